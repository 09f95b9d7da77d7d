-- The latest reconciliation's findings (rec_findings: every rec_* row that is not OK, plus
-- quarantined rows) with the billing month each belongs to (scope_period: its period, or the
-- month of its day, or for a payments or balance_transactions finding the month its Stripe
-- object was created in (macro stripe_object_periods); NULL for findings about a source) and
-- the as_of they were found at.
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

findings as (
    select * from {{ ref('rec_findings') }}
),

object_periods as (
    {{ stripe_object_periods() }}
)

select
    findings.check_name,
    findings.status,
    findings.account_id,
    findings.category,
    findings.period,
    findings.day,
    findings.object_id,
    findings.reason,
    findings.detail,
    findings.difference,
    findings.unit,
    coalesce(
        findings.period,
        substring(findings.day, 1, 7),
        case when findings.check_name in ('payments', 'balance_transactions') then object_periods.created_period end
    ) as scope_period,
    as_of.as_of
from findings
cross join as_of
left join object_periods
    on findings.object_id = object_periods.object_id
