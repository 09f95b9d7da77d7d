"""Errors a user can act on. The CLI prints them as one line, never as a traceback."""

from __future__ import annotations


class MeterlineError(Exception):
    """A problem the user can fix: bad config, unreachable warehouse, a date outside the sources."""

    exit_code = 2


class ConfigError(MeterlineError):
    """The configuration file or an environment override is missing or malformed."""


class WarehouseError(MeterlineError):
    """The warehouse cannot be reached or used."""


class SourceError(MeterlineError):
    """A source (metering, billing, Stripe) cannot be read; the message names it."""


class IntervalError(MeterlineError):
    """A requested date or period is outside what the sources cover or not ready."""


class NoBillingPeriodError(IntervalError):
    """A day or period before the first billing period in the warehouse (or no billing period
    yet: billing starts with the first whole month ingested). Nothing to report, not a failure."""


class InvoiceError(MeterlineError):
    """An invoice operation the ledger refuses: an unknown invoice, a draft where an issued
    invoice is needed, a missing reason. Nothing was changed."""


class StageError(MeterlineError):
    """A stage (dbt build, reconciliation, export) failed; the message says which and why."""

    exit_code = 3


class ExportError(StageError):
    """A closed period's rows cannot be exported as they are (unmapped GL account, unbalanced
    entry, unknown currency...); the message names the rows. Nothing is written."""
