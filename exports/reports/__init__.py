"""Scheduled finance reports: the daily flash and the month-end pack (docs/reports.md).

    build_report(conn, cfg, "daily", "2026-11-03", out_dir) -> ReportResult
    build_report(conn, cfg, "month", "2026-10", out_dir)    -> ReportResult
    send_report(cfg, result)                                 -> what was sent
    run_report(cfg, "daily" | "month", when, send=True)      -> summary dict (the CLI's entry)

A report is read from the dbt marts (exports/reports/marts.py: every number is one column of one
mart row; the finance models are in dbt_project/models/marts/finance/), laid out as one
self-contained HTML page with inline SVG charts (html.py, charts.py), printed to PDF by headless
Chromium (pdf.py), and every table is written as CSV and XLSX too (the deterministic writers of
exports/accounting.py). Everything goes to `out_dir` (run_report: `<exports_dir>/reports/<date or
period>/`) through a temporary folder swapped in at the end, so a failed report leaves the
previous one in place. `figures.json` lists each headline figure with the mart, column and key it
was read from. Email (mail.py) sends the page as the body with the PDF attached.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exports.accounting import Table, _csv_bytes, _xlsx_bytes
from exports.columns import check_columns
from exports.reports import html as html_layout
from exports.reports import mail, pdf
from exports.reports.marts import currencies, daily_report, month_report
from exports.reports.model import Figure, Report, TableSource, figure_text
from meterline.config import Config
from meterline.errors import IntervalError
from meterline.warehouse import Connection, connect, qualified

KINDS = ("daily", "month")
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
FILE_STEMS = {"daily": "daily-flash", "month": "month-end-pack"}

__all__ = ["ReportResult", "build_report", "send_report", "run_report", "report_dir"]


@dataclass
class ReportResult:
    """What build_report wrote: the page, its PDF, every table's CSV and XLSX with where its
    rows come from (stem -> TableSource: the mart, the rows and how each column is read), and the
    figures (id -> Figure, each naming the mart row it came from)."""

    kind: str
    key: str
    title: str
    out_dir: Path
    html: Path
    pdf: Path | None
    tables: dict[str, dict[str, Path]]
    figures: dict[str, Figure]
    as_of: dt.datetime
    text: str
    files: list[Path] = field(default_factory=list)
    sources: dict[str, TableSource] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "date" if self.kind == "daily" else "period": self.key,
            "title": self.title,
            "dir": str(self.out_dir),
            "html": str(self.html),
            "pdf": str(self.pdf) if self.pdf else None,
            "tables": sorted(self.tables),
            "files": [p.name for p in self.files],
            "figures": len(self.figures),
            "as_of": self.as_of.isoformat(),
        }


def _parse(kind: str, when: str) -> dt.date | str:
    if kind not in KINDS:
        raise IntervalError(f"report kind must be daily or month, got {kind!r}")
    if kind == "daily":
        if not DAY_RE.match(when or ""):
            raise IntervalError(f"the daily flash needs a date YYYY-MM-DD, got {when!r}")
        try:
            return dt.date.fromisoformat(when)
        except ValueError as exc:
            raise IntervalError(f"not a date: {when!r}") from exc
    if not PERIOD_RE.match(when or ""):
        raise IntervalError(f"the month-end pack needs a period YYYY-MM, got {when!r}")
    return when


def report_dir(cfg: Config, when: str) -> Path:
    """Where run_report writes: <exports_dir>/reports/<YYYY-MM-DD | YYYY-MM>/."""
    return cfg.exports_dir / "reports" / when


def _text_summary(report: Report) -> str:
    lines = [report.title, report.subtitle, ""]
    lines += [f"{k}: {v}" for k, v in report.facts]
    lines += ["", *report.notices] if report.notices else []
    for section in report.sections:
        if not section.cards:
            continue
        lines += ["", section.title]
        for card in section.cards:
            details = "; ".join(f"{label} {figure_text(f)}" for label, f in card.details)
            lines.append(f"  {card.title}: {figure_text(card.main)} ({details})")
    lines += ["", "The full report is the HTML part of this message and the attached PDF; every "
              "table is also written as CSV and XLSX in the report folder.", ""]
    return "\n".join(lines)


def _table_files(report: Report, period: str, exps: dict[str, int],
                 personal: frozenset[str] = frozenset()) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for t in report.tables:
        check_columns(t.stem, t.columns, personal)  # the allow-list (exports/columns.py)
        table = Table(stem=t.stem, columns=t.columns, rows=t.plain_rows())
        files[f"{t.stem}.csv"] = _csv_bytes(table)
        files[f"{t.stem}.xlsx"] = _xlsx_bytes(table, period, f"{t.stem}.csv", exps)
    return files


def _figures_json(report: Report) -> bytes:
    doc = {"report": report.kind, "key": report.key, "as_of": report.as_of.isoformat(),
           "figures": [report.figures[k].to_dict() for k in sorted(report.figures)]}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def build_report(conn: Connection, cfg: Config, kind: str, date_or_period: str, out_dir: Path,
                 with_pdf: bool = True) -> ReportResult:
    """Build the daily flash (kind "daily", a date YYYY-MM-DD: data up to that day's end) or the
    month-end pack (kind "month", a billing period YYYY-MM that is complete) from the marts and
    write it to `out_dir`. Raises IntervalError for a date or period the warehouse cannot report
    yet, StageError when the finance marts are not built or Chromium is missing (checked before
    anything is written)."""
    when = _parse(kind, date_or_period)
    if with_pdf:
        pdf.find_chromium()
    personal = cfg.personal_data
    report = (daily_report(conn, when, personal) if kind == "daily"
              else month_report(conn, when, personal))
    exps = currencies(conn)
    period = report.key[:7]
    stem = f"{FILE_STEMS[kind]}-{report.key}"
    page = html_layout.render(report)
    files = _table_files(report, period, exps, personal)
    files[f"{stem}.html"] = page.encode("utf-8")
    files["figures.json"] = _figures_json(report)

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp"
    old = out_dir.parent / f".{out_dir.name}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, data in sorted(files.items()):
            (tmp / name).write_bytes(data)
        if with_pdf:
            pdf.print_pdf(tmp / f"{stem}.html", tmp / f"{stem}.pdf")
        shutil.rmtree(old, ignore_errors=True)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return ReportResult(
        kind=kind, key=report.key, title=report.title, out_dir=out_dir,
        html=out_dir / f"{stem}.html", pdf=out_dir / f"{stem}.pdf" if with_pdf else None,
        tables={t.stem: {"csv": out_dir / f"{t.stem}.csv", "xlsx": out_dir / f"{t.stem}.xlsx"}
                for t in report.tables},
        figures=report.figures, as_of=report.as_of, text=_text_summary(report),
        files=sorted(out_dir.iterdir()),
        sources={t.stem: t.source for t in report.tables},
    )


def send_report(cfg: Config, result: ReportResult) -> dict[str, Any]:
    """Email `result` (HTML body, PDF attached) to [reports] smtp_to through [alerts]' SMTP
    server. Raises ConfigError when not configured, ReportDeliveryError when sending fails."""
    return mail.send(cfg, result)


def run_report(cfg: Config, kind: str, when: str, send: bool = True,
               read_only: bool = True, once: bool = False) -> dict[str, Any]:
    """`meterline report daily|month --date ...`: build the report from the configured warehouse
    into <exports_dir>/reports/<when>/ and, with `send`, email it when [reports] smtp_to and
    [alerts] smtp_host are set. Returns a JSON-able summary.

    The warehouse is opened read-only (the report never writes it); a caller that has already
    opened DuckDB read-write in the same process (an Airflow task run in-process by
    `airflow dags test`) passes read_only=False, as DuckDB refuses one file opened both ways.
    With `once` (the DAGs; needs read_only=False), a report whose content was already emailed is
    not emailed again (ledger.report_log): a retried task or a rerun of a date sends nothing
    twice, while a report whose figures changed (restated data) goes out again."""
    _parse(kind, when)
    if once and read_only:
        raise ValueError("run_report(once=True) records what it sends: it needs read_only=False")
    # the report reads marts as the reporting login; what it emailed is the ledger's to record
    with connect(cfg.warehouse_for("reporting"), read_only=read_only) as conn:
        result = build_report(conn, cfg, kind, when, report_dir(cfg, when))
        summary = result.to_dict()
        if not send:
            summary["email"] = {"sent": False, "reason": "not requested"}
        elif not mail.is_configured(cfg):
            summary["email"] = {"sent": False,
                                "reason": "not configured: set [alerts] smtp_host and [reports] smtp_to"}
        elif once:
            with connect(cfg.warehouse_for("ledger")) as ledger:
                if (sent_at := _sent_before(ledger, result)) is not None:
                    summary["email"] = {"sent": False, "reason": f"already sent at {sent_at:%Y-%m-%d %H:%M} "
                                                                 "UTC (same report, same content)"}
                else:
                    summary["email"] = send_report(cfg, result)
                    _record_sent(ledger, cfg, result)
        else:
            summary["email"] = send_report(cfg, result)
    return summary


def content_digest(result: ReportResult) -> str:
    """What the report says: its page and its figures (the PDF, which Chromium stamps with the
    time it printed it, aside)."""
    h = hashlib.sha256()
    for path in (result.html, result.out_dir / "figures.json"):
        h.update(path.read_bytes())
    return h.hexdigest()


def _sent_before(conn: Connection, result: ReportResult) -> dt.datetime | None:
    from meterline.ledger import LEDGER_TABLES

    conn.ensure_table("ledger", "report_log", LEDGER_TABLES["report_log"])
    row = conn.fetchone(
        f"SELECT max(sent_at) FROM {qualified('ledger', 'report_log')} "
        "WHERE kind = ? AND report_key = ? AND content_sha256 = ?",
        [result.kind, result.key, content_digest(result)])
    return row[0] if row else None


def _record_sent(conn: Connection, cfg: Config, result: ReportResult) -> None:
    conn.execute(
        f"INSERT INTO {qualified('ledger', 'report_log')} "
        "(kind, report_key, content_sha256, recipients, sent_at) VALUES (?, ?, ?, ?, ?)",
        [result.kind, result.key, content_digest(result), str(cfg.get("reports", "smtp_to")),
         dt.datetime.now(dt.UTC).replace(tzinfo=None)])
