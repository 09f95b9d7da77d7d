-- Rows of the latest loaded billing batch of discounts (a full snapshot each night).
{{ latest_snapshot_rows('stg_billing__discounts') }}
