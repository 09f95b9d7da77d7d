-- The latest extracted version of each Stripe customer (one row per customer_id).
{{ latest_version_rows('stg_stripe__customers', 'customer_id') }}
