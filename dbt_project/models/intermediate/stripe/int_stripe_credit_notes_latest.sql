-- The latest extracted version of each Stripe credit note (one row per credit_note_id).
{{ latest_version_rows('stg_stripe__credit_notes', 'credit_note_id') }}
