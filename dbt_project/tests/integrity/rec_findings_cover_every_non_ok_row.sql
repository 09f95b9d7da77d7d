-- rec_findings holds one row per non-OK rec_* row and per quarantined row, no more, no less.
{% set checks = {
    'usage_daily': 'rec_usage_daily',
    'invoice_totals': 'rec_invoice_totals',
    'invoice_lines': 'rec_invoice_lines',
    'payments': 'rec_payments',
    'issued_vs_current': 'rec_issued_vs_current',
} %}

with

expected as (
    {% for check_name, model in checks.items() %}
        select
            '{{ check_name }}' as check_name,
            count(*) as n
        from {{ ref(model) }}
        where status not in ('matched', 'within_tolerance', 'late_pending', 'explained')
        union all
    {% endfor %}
    select
        'quarantine' as check_name,
        count(*) as n
    from {{ ref('fct_quarantine') }}
),

actual as (
    select
        check_name,
        count(*) as n
    from {{ ref('rec_findings') }}
    group by check_name
)

select
    expected.check_name,
    expected.n as expected_rows,
    coalesce(actual.n, 0) as actual_rows
from expected
left join actual
    on expected.check_name = actual.check_name
where expected.n <> coalesce(actual.n, 0)
