-- Every reconciliation row carries exactly one status from the vocabulary: the rec_* models
-- have one status column, so a row fails when it is NULL or outside the vocabulary.
{% set vocabulary = [
    'matched', 'within_tolerance', 'drift', 'late_pending', 'explained',
    'missing_in_metering', 'missing_in_billing', 'missing_in_stripe', 'missing_in_computed',
    'duplicate_in_metering', 'duplicate_in_billing', 'duplicate_in_stripe', 'duplicate_in_computed'
] %}
{% set rec_models = [
    'rec_usage_daily', 'rec_invoice_totals', 'rec_invoice_lines', 'rec_payments', 'rec_issued_vs_current'
] %}

with

statuses as (
    {% for model in rec_models %}
        select
            '{{ model }}' as model_name,
            status
        from {{ ref(model) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select *
from statuses
where
    status is null
    or status not in ({{ quoted_list(vocabulary) }})
