-- The latest extracted version of each Stripe invoice_line (one row per invoice_line_id).
{{ latest_version_rows('stg_stripe__invoice_lines', 'invoice_line_id') }}
