-- The latest extracted version of each Stripe dispute (one row per dispute_id).
{{ latest_version_rows('stg_stripe__disputes', 'dispute_id') }}
