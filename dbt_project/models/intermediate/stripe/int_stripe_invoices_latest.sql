-- The latest extracted version of each Stripe invoice (one row per invoice_id).
{{ latest_version_rows('stg_stripe__invoices', 'invoice_id') }}
