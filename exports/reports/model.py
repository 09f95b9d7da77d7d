"""What a finance report is made of: figures (one number from one mart row), tables (rows from a
mart), charts (SVG) and sections; and how a value is shown.

Nothing here computes a figure. Formatting turns a mart's integer into text (minor units into
major units with the currency's exponent, basis points into a percentage) without rounding it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exports.accounting import Money, format_minor


@dataclass(frozen=True)
class Bps:
    """A change or share in basis points, from a mart (`*_bps`); shown as a percentage."""

    value: int
    signed: bool = True  # a change (+/-) rather than a share

    def percent(self) -> Decimal:
        return Decimal(self.value).scaleb(-2)

    def text(self) -> str:
        sign = "+" if self.signed and self.value > 0 else ""
        return f"{sign}{self.percent():,.2f} %"


@dataclass(frozen=True)
class Quantity:
    """A usage quantity in its unit (event, byte, seat...)."""

    value: int
    unit: str

    def text(self) -> str:
        return f"{self.value:,} {self.unit}" + ("" if self.value == 1 else "s")


@dataclass(frozen=True)
class Figure:
    """One number shown in a report, with where it comes from: the value of `column` in the row
    of `mart` whose key columns equal `key`. `value` is the mart's integer (minor units, usage
    units, basis points or a count), None when the mart has NULL there."""

    id: str
    label: str
    value: int | None
    kind: str  # money | quantity | bps | count
    unit: str  # a currency code, a usage unit, "bps" or "count"
    mart: str
    column: str
    key: tuple[tuple[str, Any], ...]
    exponent: int = 0

    def cell(self) -> Any:
        """The value as a table cell / display object."""
        if self.value is None:
            return None
        if self.kind == "money":
            return Money(self.value, self.unit, self.exponent)
        if self.kind == "bps":
            return Bps(self.value)
        if self.kind == "quantity":
            return Quantity(self.value, self.unit)
        return self.value

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "value": self.value, "kind": self.kind,
                "unit": self.unit, "mart": self.mart, "column": self.column,
                "key": {k: _json_value(v) for k, v in self.key}}


def _json_value(v: Any) -> Any:
    if isinstance(v, dt.date | dt.datetime):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return v


@dataclass(frozen=True)
class Col:
    """How one column of a table file is read from its mart row (TableSource). `column` is the
    mart column; `kind` says how the file shows its value:

      text    as it is (a date or timestamp in ISO 8601)
      date    the date of a date or timestamp
      number  an integer (a count, a usage quantity, a rank, days)
      money   integer minor units of the currency in the row's `currency` column, in major units
      bps     basis points, as a percentage
      amount  money in the currency the row's `currency` column (a unit) names when it is one,
              else the number followed by that unit
      label   the text `labels` gives the value
      words   the value with its underscores as spaces
      free    free text made from `column` and the `also` columns: every number in it is in them
      const   no mart column: the fixed text `value` (a label such as "total"), or empty

    `shown_if`: empty unless the row's boolean column of that name is true. Nothing here is
    computed from a value: the column shows the mart's value, formatted."""

    column: str | None
    kind: str = "text"
    currency: str = "currency"
    labels: tuple[tuple[Any, str], ...] = ()
    also: tuple[str, ...] = ()
    shown_if: str | None = None
    value: str | None = None

    @staticmethod
    def text(column: str) -> Col:
        return Col(column)

    @staticmethod
    def date(column: str) -> Col:
        return Col(column, "date")

    @staticmethod
    def number(column: str, shown_if: str | None = None) -> Col:
        return Col(column, "number", shown_if=shown_if)

    @staticmethod
    def money(column: str) -> Col:
        return Col(column, "money")

    @staticmethod
    def bps(column: str, shown_if: str | None = None) -> Col:
        return Col(column, "bps", shown_if=shown_if)

    @staticmethod
    def amount(column: str, unit: str) -> Col:
        return Col(column, "amount", currency=unit)

    @staticmethod
    def label(column: str, labels: Mapping[Any, str]) -> Col:
        return Col(column, "label", labels=tuple(labels.items()))

    @staticmethod
    def words(column: str) -> Col:
        return Col(column, "words")

    @staticmethod
    def free(column: str, *also: str) -> Col:
        return Col(column, "free", also=also)

    @staticmethod
    def const(value: str | None = None) -> Col:
        return Col(None, "const", value=value)


@dataclass(frozen=True)
class SourceRows:
    """Rows of a table file and the mart rows they show: the rows of the table's mart where
    `where` holds (SQL over the mart's columns, `?` for `params`; empty: every row), one file row
    each, file column `name` showing `col` for each of `columns`. With `pivot` (a mart column and
    a Col): one file row per distinct value of `columns`, and after them one file column per value
    of the pivot column (sorted), showing the Col of the mart row with that value (empty if none)."""

    where: str
    params: tuple[Any, ...]
    columns: tuple[tuple[str, Col], ...]
    pivot: tuple[str, Col] | None = None


@dataclass(frozen=True)
class TableSource:
    """Where every row and cell of a table comes from (the tests check the written files against
    it): `mart`, and the kinds of row it shows (a "total" row per currency is a second kind)."""

    mart: str
    rows: tuple[SourceRows, ...]

    @staticmethod
    def of(mart: str, where: str, params: Sequence[Any], columns: Sequence[tuple[str, Col]],
           pivot: tuple[str, Col] | None = None) -> TableSource:
        return TableSource(mart, (SourceRows(where, tuple(params), tuple(columns), pivot),))


@dataclass
class ReportTable:
    """A table of the report, written as `<stem>.csv` and `<stem>.xlsx` too. `columns` are the
    file's column names; `headers` what the page shows. Cells: str, int, date, Money, Bps,
    Quantity or None. `source` says which mart the rows come from and how each column is read
    from it."""

    stem: str
    title: str
    columns: list[str]
    headers: list[str]
    rows: list[list[Any]]
    source: TableSource
    note: str | None = None
    empty: str = "none"
    numeric: frozenset[str] = frozenset()  # columns aligned right
    # on the page only: (header, source columns) shown as one column "a · b · c" where the first
    # source column is (the files keep every column)
    merged: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def mart(self) -> str:
        return self.source.mart

    def plain_rows(self) -> list[list[Any]]:
        """Rows for CSV and XLSX: Money stays exact Money, a percentage is an exact Decimal,
        a quantity its integer."""
        out = []
        for row in self.rows:
            out.append([_plain(v) for v in row])
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, Figure):
        v = v.cell()
    if isinstance(v, Bps):
        return v.percent()
    if isinstance(v, Quantity):
        return v.value
    return v


@dataclass
class Card:
    """A headline: one main figure and a few smaller ones under it."""

    title: str
    main: Figure
    details: list[tuple[str, Figure]] = field(default_factory=list)


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    cards: list[Card] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)
    tables: list[ReportTable] = field(default_factory=list)


@dataclass
class Report:
    kind: str  # daily | month
    key: str  # YYYY-MM-DD | YYYY-MM
    title: str
    subtitle: str
    as_of: dt.datetime
    facts: list[tuple[str, str]]
    sections: list[Section]
    figures: dict[str, Figure]
    notices: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[ReportTable]:
        return [t for s in self.sections for t in s.tables]


# ------------------------------------------------------------------------------------ formatting


def group_digits(text: str) -> str:
    """'-1234567.89' -> '-1,234,567.89' (exact: only separators are added)."""
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    whole, dot, frac = body.partition(".")
    return f"{sign}{int(whole):,}{dot}{frac}"


def money_text(minor: int, currency: str, exponent: int) -> str:
    return f"{group_digits(format_minor(minor, exponent))} {currency}"


def compact_money(minor: int, currency: str, exponent: int) -> str:
    """A short label for charts (the tables show the exact amount): 1234567.89 -> '1.23M'."""
    major = Decimal(minor).scaleb(-exponent)
    for limit, suffix in ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "k")):
        if abs(major) >= limit:
            return f"{major / limit:,.2f}{suffix}"
    return f"{major:,.{exponent}f}"


def compact_number(value: int) -> str:
    for limit, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= limit:
            return f"{Decimal(value) / limit:,.1f}{suffix}"
    return f"{value:,}"


def cell_text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, Money):
        return money_text(value.minor, value.currency, value.exponent)
    if isinstance(value, Bps | Quantity):
        return value.text()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return group_digits(str(value.normalize()) if value == value.to_integral_value() else str(value))
    return str(value)


def figure_text(fig: Figure) -> str:
    return cell_text(fig.cell())


def exponents_for(rows: Sequence[Mapping[str, Any]], currencies: Mapping[str, int]) -> None:
    """Fail clearly when a row's currency has no known exponent (seeds.currencies)."""
    from meterline.errors import ExportError

    missing = sorted({r["currency"] for r in rows if r.get("currency") and r["currency"] not in currencies})
    if missing:
        raise ExportError(f"no minor-unit exponent for currency {', '.join(missing)} (seeds.currencies)")
