-- The deferred revenue waterfall: for prepaid credits sold in each origin month (per currency),
-- how much was recognized in each later accounting month (applied to invoices or expired as
-- breakage) and what remained deferred after it. From the deferred_revenue lines of the journal,
-- which carry the credit in `reference`.
with

deferred as (
    select * from {{ ref('fct_journal_lines') }}
    where gl_key = 'deferred_revenue'
),

credits as (
    select
        credit_id,
        {{ format_period('granted_at') }} as origin_period
    from {{ ref('int_billing_credits_snapshot') }}
),

movements as (
    select
        deferred.currency,
        coalesce(credits.origin_period, deferred.accounting_period) as origin_period,
        deferred.accounting_period as recognition_period,
        sum(case when deferred.entry_type = 'credit_grant' then -deferred.amount_minor else 0 end) as sold_minor,
        sum(case when deferred.entry_type = 'credit_grant' then 0 else deferred.amount_minor end) as recognized_minor
    from deferred
    left join credits
        on deferred.reference = credits.credit_id
    group by deferred.currency, coalesce(credits.origin_period, deferred.accounting_period), deferred.accounting_period
)

select
    {{ dbt.concat(["currency", "'|'", "origin_period", "'|'", "recognition_period"]) }} as waterfall_key,
    currency,
    origin_period,
    recognition_period,
    cast(sold_minor as {{ dbt.type_bigint() }}) as sold_minor,
    cast(recognized_minor as {{ dbt.type_bigint() }}) as recognized_minor,
    cast(sum(sold_minor - recognized_minor) over (
        partition by currency, origin_period
        order by recognition_period
        rows between unbounded preceding and current row
    ) as {{ dbt.type_bigint() }}) as remaining_minor
from movements
