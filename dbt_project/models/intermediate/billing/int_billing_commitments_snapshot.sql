-- Rows of the latest loaded billing batch of commitments (a full snapshot each night).
{{ latest_snapshot_rows('stg_billing__commitments') }}
