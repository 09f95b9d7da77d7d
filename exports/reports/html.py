"""Lay a `Report` out as one self-contained HTML page: the stylesheet inline, charts as inline
SVG, no script, no external resource (it opens the same from disk, in an email and in the PDF).

Every headline number and every table cell that is a figure carries `data-figure="<id>"`, each
table `data-table="<file stem>"` and each chart `data-chart`, so tests can read the page back.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from typing import Any

from exports.accounting import Money
from exports.reports.model import Bps, Figure, Report, ReportTable, Section, cell_text, figure_text

GENERATOR = "meterline finance reports"


def stylesheet() -> str:
    return resources.files("exports.reports").joinpath("report.css").read_text(encoding="utf-8")


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _signed_class(value: Any) -> str:
    number = None
    if isinstance(value, Figure):
        value = value.cell()
    if isinstance(value, Money):
        number = value.minor
    elif isinstance(value, Bps):
        number = value.value
    if number is None:
        return ""
    return " neg" if number < 0 else ""


NOWRAP = frozenset({"currency", "period", "day", "billed_period", "invoice_date", "created_at", "status",
                    "check_name"})


def _cell(value: Any, numeric: bool, column: str) -> str:
    classes = ("num" if numeric else "") + _signed_class(value)
    if column == "detail":
        classes += " detail"
    elif column in NOWRAP:
        classes += " nowrap"
    cls = f' class="{classes.strip()}"' if classes.strip() else ""
    if isinstance(value, Figure):
        return f'<td{cls} data-figure="{_attr(value.id)}">{escape(figure_text(value))}</td>'
    return f"<td{cls}>{escape(cell_text(value))}</td>"


def _layout(table: ReportTable) -> list[tuple[str, str, list[int]]]:
    """The page's columns: (name, header, indexes of the table columns shown in it)."""
    index = {c: i for i, c in enumerate(table.columns)}
    merged_first = {sources[0]: (header, sources) for header, sources in table.merged}
    hidden = {c for _, sources in table.merged for c in sources}
    out = []
    for c, h in zip(table.columns, table.headers, strict=True):
        if c in merged_first:
            header, sources = merged_first[c]
            out.append((header, header, [index[s] for s in sources]))
        elif c not in hidden:
            out.append((c, h, [index[c]]))
    return out


def table_html(table: ReportTable) -> str:
    parts = [f"<h3>{escape(table.title)}</h3>"]
    if not table.rows:
        parts.append(f'<p class="empty" data-table="{_attr(table.stem)}">{escape(table.empty.capitalize())}.</p>')
    else:
        layout = _layout(table)
        wide = " wide" if len(layout) > 10 else ""
        parts.append(f'<table class="data{wide}" data-table="{_attr(table.stem)}" data-mart="{_attr(table.mart)}">')
        parts.append("<thead><tr>" + "".join(
            f'<th class="num">{escape(h)}</th>' if c in table.numeric else f"<th>{escape(h)}</th>"
            for c, h, _ in layout) + "</tr></thead><tbody>")
        for row in table.rows:
            cells = []
            for c, _, idx in layout:
                if len(idx) == 1:
                    cells.append(_cell(row[idx[0]], c in table.numeric, c))
                else:
                    text = " · ".join(cell_text(row[i]) for i in idx if row[i] is not None)
                    cells.append(f"<td>{escape(text)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    files = f"{table.stem}.csv · {table.stem}.xlsx"
    note = f"{table.note} " if table.note else ""
    parts.append(f'<p class="files">{escape(note)}Source: {escape(table.mart)}. Files: {escape(files)}</p>')
    return "".join(parts)


def _card(card: Any) -> str:
    details = "".join(
        f'<dt>{escape(label)}</dt><dd class="{_signed_class(f).strip()}" data-figure="{_attr(f.id)}">'
        f"{escape(figure_text(f))}</dd>" for label, f in card.details)
    return (f'<div class="card"><div class="card-title">{escape(card.title)}</div>'
            f'<div class="card-main" data-figure="{_attr(card.main.id)}">{escape(figure_text(card.main))}</div>'
            f"<dl>{details}</dl></div>")


def section_html(section: Section) -> str:
    parts = [f'<section id="{_attr(section.id)}"><h2>{escape(section.title)}</h2>']
    if section.intro:
        parts.append(f'<p class="intro">{escape(section.intro)}</p>')
    if section.cards:
        parts.append('<div class="cards">' + "".join(_card(c) for c in section.cards) + "</div>")
    if section.charts:
        parts.append('<div class="charts">' + "".join(section.charts) + "</div>")
    parts.extend(table_html(t) for t in section.tables)
    parts.append("</section>")
    return "".join(parts)


def render(report: Report) -> str:
    facts = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in report.facts)
    nav = "".join(f'<a href="#{_attr(s.id)}">{escape(s.title)}</a>' for s in report.sections)
    notices = "".join(f'<div class="notice">{escape(n)}</div>' for n in report.notices)
    marts = sorted({t.mart for t in report.tables} | {f.mart for f in report.figures.values()})
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en" data-report="{_attr(report.kind)}" data-key="{_attr(report.key)}">'
        "<head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{GENERATOR}">'
        f"<title>{escape(report.title)}</title><style>{stylesheet()}</style></head><body>"
        f"<header><h1>{escape(report.title)}</h1><p class=\"subtitle\">{escape(report.subtitle)}</p>"
        f'<dl class="facts">{facts}</dl><nav>{nav}</nav></header>{notices}'
        + "".join(section_html(s) for s in report.sections)
        + "<footer>Every number on this page is read from the warehouse's dbt marts ("
        + escape(", ".join(marts))
        + "); none is computed by the report. Amounts are exact, in each currency's own units; "
        "currencies are never converted or added together. Each table is also attached as CSV and "
        "XLSX with the file name shown under it.</footer></body></html>\n"
    )
