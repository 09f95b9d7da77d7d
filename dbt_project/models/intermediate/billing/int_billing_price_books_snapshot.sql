-- Rows of the latest loaded billing batch of price_books (a full snapshot each night).
{{ latest_snapshot_rows('stg_billing__price_books') }}
