-- The latest extracted version of each Stripe refund (one row per refund_id).
{{ latest_version_rows('stg_stripe__refunds', 'refund_id') }}
