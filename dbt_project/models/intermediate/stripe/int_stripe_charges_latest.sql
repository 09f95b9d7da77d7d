-- The latest extracted version of each Stripe charge (one row per charge_id).
{{ latest_version_rows('stg_stripe__charges', 'charge_id') }}
