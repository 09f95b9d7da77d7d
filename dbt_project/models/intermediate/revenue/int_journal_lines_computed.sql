-- Double-entry journal lines, as known now (before period locks are applied; marts.fct_journal_lines
-- applies them). amount_minor is signed: debit positive, credit negative. Every entry has one
-- account (or none, for payouts and fees) and one currency, and its lines sum to zero.
-- Entries (docs/revenue.md):
--   recognition  per account, currency and month: Cr revenue:<product>, Dr unbilled_receivables
--                (revenue is earned before it is invoiced); refunds Dr refunds and credit notes
--                Dr contra_revenue are their own entries below
--   invoice      an invoice whose period has ended (issued, void or still draft): Dr receivables
--                (its total), Dr deferred_revenue (prepaid credits it draws), Cr unbilled_receivables
--                (everything else it bills: revenue lines, discounts, unpaid-for credits, adjustments)
--   void         a voided invoice, reversed on the day it was voided
--   credit_grant a prepaid credit: Dr receivables, Cr deferred_revenue, on the day it was granted
--   breakage     an expired prepaid credit's remainder: Dr deferred_revenue, Cr revenue:credit_breakage
--   charge       a succeeded Stripe charge: Dr cash_clearing, Cr receivables
--   stripe_fee   a balance transaction's fee: Dr stripe_fees, Cr cash_clearing
--   refund       a succeeded refund: Dr refunds (contra-revenue), Cr cash_clearing
--   credit_note  an issued credit note: Dr contra_revenue, Cr receivables
--   payout       a paid payout: Dr bank, Cr cash_clearing, on its arrival day
with

as_of as (
    select * from {{ ref('int_ledger_as_of') }}
),

revenue as (
    select * from {{ ref('int_revenue_daily_computed') }}
),

invoices as (
    select * from {{ ref('fct_invoices') }}
),

invoice_lines as (
    select * from {{ ref('fct_invoice_lines') }}
),

issued_invoices as (
    select * from {{ ref('stg_ledger__issued_invoices') }}
),

credits as (
    select * from {{ ref('int_billing_credits_snapshot') }}
),

customers as (
    select * from {{ ref('int_stripe_customers_latest') }}
),

charges as (
    select * from {{ ref('int_stripe_charges_latest') }}
),

recognition_months as (
    select
        revenue.account_id,
        revenue.currency,
        revenue.accounting_period,
        revenue.product,
        sum(revenue.revenue_minor) as revenue_minor,
        max(revenue.revenue_date) as last_revenue_date
    from revenue
    where revenue.revenue_source = 'invoice_lines'
    group by revenue.account_id, revenue.currency, revenue.accounting_period, revenue.product
),

recognition_entries as (
    select
        {{ dbt.concat(["'rec|'", "account_id", "'|'", "currency", "'|'", "accounting_period"]) }} as entry_id,
        account_id,
        currency,
        accounting_period,
        max(last_revenue_date) over (partition by account_id, currency, accounting_period) as entry_date,
        product,
        revenue_minor
    from recognition_months
),

recognition_lines as (
    select
        entry_id,
        entry_date,
        'recognition' as entry_type,
        account_id,
        currency,
        {{ dbt.concat(["'revenue:'", "product"]) }} as gl_key,
        product,
        -revenue_minor as amount_minor,
        {{ dbt.concat(["'Revenue recognized, '", "product"]) }} as memo,
        accounting_period as service_period,
        cast(null as {{ dbt.type_string() }}) as reference
    from recognition_entries
    union all
    select
        entry_id,
        max(entry_date) as entry_date,
        'recognition' as entry_type,
        account_id,
        currency,
        'unbilled_receivables' as gl_key,
        cast(null as {{ dbt.type_string() }}) as product,
        sum(revenue_minor) as amount_minor,
        'Revenue recognized, not yet invoiced' as memo,
        accounting_period as service_period,
        cast(null as {{ dbt.type_string() }}) as reference
    from recognition_entries
    group by entry_id, account_id, currency, accounting_period
),

-- invoices of ended periods, with the day they are booked (the last day of the period)
booked_invoices as (
    select
        invoices.invoice_id,
        invoices.account_id,
        invoices.currency,
        invoices.period,
        invoices.total_minor,
        cast({{ dbt.dateadd('day', -1, 'invoices.period_end') }} as date) as entry_date,
        cast(issued_invoices.voided_at as date) as voided_date
    from invoices
    cross join as_of
    left join issued_invoices
        on invoices.invoice_id = issued_invoices.invoice_id
    where invoices.period_end <= as_of.as_of
),

invoice_line_amounts as (
    select
        booked_invoices.invoice_id,
        booked_invoices.account_id,
        booked_invoices.currency,
        booked_invoices.period,
        booked_invoices.entry_date,
        booked_invoices.voided_date,
        invoice_lines.line_key,
        invoice_lines.amount_minor,
        credits.credit_id as prepaid_credit_id
    from booked_invoices
    inner join invoice_lines
        on booked_invoices.invoice_id = invoice_lines.invoice_id
    left join credits
        on
            invoice_lines.line_type = 'credit'
            and invoice_lines.line_key = {{ dbt.concat(["'credit|'", "credits.credit_id"]) }}
            and credits.credit_reason = 'prepaid'
),

invoice_entry_lines as (
    select
        invoice_id,
        account_id,
        currency,
        period,
        entry_date,
        voided_date,
        'receivables' as gl_key,
        sum(amount_minor) as amount_minor,
        'Invoice' as memo,
        cast(null as {{ dbt.type_string() }}) as reference
    from invoice_line_amounts
    group by invoice_id, account_id, currency, period, entry_date, voided_date
    union all
    select
        invoice_id,
        account_id,
        currency,
        period,
        entry_date,
        voided_date,
        'deferred_revenue' as gl_key,
        -amount_minor as amount_minor,
        'Prepaid credit applied' as memo,
        prepaid_credit_id as reference
    from invoice_line_amounts
    where prepaid_credit_id is not null
    union all
    select
        invoice_id,
        account_id,
        currency,
        period,
        entry_date,
        voided_date,
        'unbilled_receivables' as gl_key,
        -sum(amount_minor) as amount_minor,
        'Invoiced' as memo,
        cast(null as {{ dbt.type_string() }}) as reference
    from invoice_line_amounts
    where prepaid_credit_id is null
    group by invoice_id, account_id, currency, period, entry_date, voided_date
),

invoice_lines_booked as (
    select
        {{ dbt.concat(["'inv|'", "invoice_id"]) }} as entry_id,
        entry_date,
        'invoice' as entry_type,
        account_id,
        currency,
        gl_key,
        cast(null as {{ dbt.type_string() }}) as product,
        amount_minor,
        {{ dbt.concat(["memo", "' '", "invoice_id"]) }} as memo,
        period as service_period,
        reference
    from invoice_entry_lines
    union all
    select
        {{ dbt.concat(["'void|'", "invoice_id"]) }} as entry_id,
        voided_date as entry_date,
        'void' as entry_type,
        account_id,
        currency,
        gl_key,
        cast(null as {{ dbt.type_string() }}) as product,
        -amount_minor as amount_minor,
        {{ dbt.concat(["'Void of '", "invoice_id"]) }} as memo,
        period as service_period,
        reference
    from invoice_entry_lines
    where voided_date is not null
),

prepaid_grants as (
    select
        credits.credit_id,
        credits.account_id,
        credits.currency,
        credits.amount_minor,
        cast(credits.granted_at as date) as entry_date
    from credits
    cross join as_of
    where
        credits.credit_reason = 'prepaid'
        and credits.granted_at < as_of.as_of
),

breakage_by_credit as (
    select
        credits.credit_id,
        credits.account_id,
        credits.currency,
        cast(credits.expires_at as date) as entry_date,
        credits.amount_minor + coalesce(sum(invoice_lines.amount_minor), 0) as remaining_minor
    from credits
    cross join as_of
    left join invoice_lines
        on
            invoice_lines.line_type = 'credit'
            and invoice_lines.state <> 'void'
            and invoice_lines.line_key = {{ dbt.concat(["'credit|'", "credits.credit_id"]) }}
    where
        credits.credit_reason = 'prepaid'
        and credits.expires_at is not null
        and credits.expires_at <= as_of.as_of
    group by credits.credit_id, credits.account_id, credits.currency, credits.expires_at, credits.amount_minor
),

stripe_charges as (
    select
        charges.charge_id,
        customers.account_id,
        charges.currency,
        charges.amount_minor,
        cast(charges.created_at as date) as entry_date
    from charges
    left join customers
        on charges.customer_id = customers.customer_id
    where charges.charge_status = 'succeeded'
),

-- the entries of exactly two lines: one row each, (entry type, entry id prefix, memo prefix, object
-- id, account, currency, day, amount, debit GL key and product, credit GL key and product)
two_sided as (
    select
        'credit_grant' as entry_type,
        'grant' as entry_prefix,
        'Prepaid credit sold ' as memo_prefix,
        credit_id as object_id,
        account_id,
        currency,
        entry_date,
        amount_minor,
        'receivables' as debit_key,
        cast(null as {{ dbt.type_string() }}) as debit_product,
        'deferred_revenue' as credit_key,
        cast(null as {{ dbt.type_string() }}) as credit_product
    from prepaid_grants
    union all
    select
        'breakage' as entry_type,
        'brk' as entry_prefix,
        'Prepaid credit expired ' as memo_prefix,
        credit_id as object_id,
        account_id,
        currency,
        entry_date,
        remaining_minor as amount_minor,
        'deferred_revenue' as debit_key,
        cast(null as {{ dbt.type_string() }}) as debit_product,
        'revenue:credit_breakage' as credit_key,
        'credit_breakage' as credit_product
    from breakage_by_credit
    union all
    select
        'charge' as entry_type,
        'charge' as entry_prefix,
        'charge ' as memo_prefix,
        charge_id as object_id,
        account_id,
        currency,
        entry_date,
        amount_minor,
        'cash_clearing' as debit_key,
        cast(null as {{ dbt.type_string() }}) as debit_product,
        'receivables' as credit_key,
        cast(null as {{ dbt.type_string() }}) as credit_product
    from stripe_charges
    union all
    select
        'stripe_fee' as entry_type,
        'stripe_fee' as entry_prefix,
        'stripe_fee ' as memo_prefix,
        balance_transactions.balance_transaction_id as object_id,
        stripe_charges.account_id,
        balance_transactions.currency,
        cast(balance_transactions.created_at as date) as entry_date,
        balance_transactions.fee_minor as amount_minor,
        'stripe_fees' as debit_key,
        cast(null as {{ dbt.type_string() }}) as debit_product,
        'cash_clearing' as credit_key,
        cast(null as {{ dbt.type_string() }}) as credit_product
    from {{ ref('stg_stripe__balance_transactions') }} as balance_transactions
    left join stripe_charges
        on balance_transactions.source_id = stripe_charges.charge_id
    where balance_transactions.fee_minor <> 0
    union all
    select
        'refund' as entry_type,
        'refund' as entry_prefix,
        'refund ' as memo_prefix,
        refunds.refund_id as object_id,
        customers.account_id,
        refunds.currency,
        cast(refunds.created_at as date) as entry_date,
        refunds.amount_minor,
        'refunds' as debit_key,
        'refunds' as debit_product,
        'cash_clearing' as credit_key,
        cast(null as {{ dbt.type_string() }}) as credit_product
    from {{ ref('int_stripe_refunds_latest') }} as refunds
    left join charges
        on refunds.charge_id = charges.charge_id
    left join customers
        on charges.customer_id = customers.customer_id
    where refunds.refund_status = 'succeeded'
    union all
    select
        'credit_note' as entry_type,
        'credit_note' as entry_prefix,
        'credit_note ' as memo_prefix,
        credit_notes.credit_note_id as object_id,
        customers.account_id,
        credit_notes.currency,
        cast(credit_notes.created_at as date) as entry_date,
        credit_notes.amount_minor,
        'contra_revenue' as debit_key,
        'credit_notes' as debit_product,
        'receivables' as credit_key,
        cast(null as {{ dbt.type_string() }}) as credit_product
    from {{ ref('int_stripe_credit_notes_latest') }} as credit_notes
    left join customers
        on credit_notes.customer_id = customers.customer_id
    where credit_notes.credit_note_status <> 'void'
    union all
    select
        'payout' as entry_type,
        'payout' as entry_prefix,
        'payout ' as memo_prefix,
        payout_id as object_id,
        cast(null as {{ dbt.type_string() }}) as account_id,
        currency,
        cast(arrival_at as date) as entry_date,
        amount_minor,
        'bank' as debit_key,
        cast(null as {{ dbt.type_string() }}) as debit_product,
        'cash_clearing' as credit_key,
        cast(null as {{ dbt.type_string() }}) as credit_product
    from {{ ref('stg_stripe__payouts') }}
    where payout_status = 'paid'
),

two_sided_lines as (
    select
        {{ dbt.concat(["entry_prefix", "'|'", "object_id"]) }} as entry_id,
        entry_date,
        entry_type,
        account_id,
        currency,
        debit_key as gl_key,
        debit_product as product,
        amount_minor,
        {{ dbt.concat(["memo_prefix", "object_id"]) }} as memo,
        {{ format_period('entry_date') }} as service_period,
        object_id as reference
    from two_sided
    union all
    select
        {{ dbt.concat(["entry_prefix", "'|'", "object_id"]) }} as entry_id,
        entry_date,
        entry_type,
        account_id,
        currency,
        credit_key as gl_key,
        credit_product as product,
        -amount_minor as amount_minor,
        {{ dbt.concat(["memo_prefix", "object_id"]) }} as memo,
        {{ format_period('entry_date') }} as service_period,
        object_id as reference
    from two_sided
),

all_lines as (
    select * from recognition_lines
    union all
    select * from invoice_lines_booked
    union all
    select * from two_sided_lines
)

select
    {{ dbt.concat([
        "entry_id", "'|'", "gl_key", "'|'", "coalesce(product, '')", "'|'", "coalesce(reference, '')"]) }}
        as journal_line_id,
    entry_id,
    entry_date,
    {{ format_period('entry_date') }} as accounting_period,
    entry_type,
    account_id,
    currency,
    gl_key,
    product,
    cast(sum(amount_minor) as {{ dbt.type_bigint() }}) as amount_minor,
    max(memo) as memo,
    service_period,
    reference
from all_lines
where amount_minor <> 0
group by entry_id, entry_date, entry_type, account_id, currency, gl_key, product, service_period, reference
