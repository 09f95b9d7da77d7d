-- Rows of the latest loaded billing batch of spike_releases (a full snapshot each night).
{{ latest_snapshot_rows('stg_billing__spike_releases') }}
