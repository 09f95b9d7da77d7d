"""Email a finance report: one message per report to `[reports] smtp_to`, through the SMTP server
of `[alerts]` (smtp_host, smtp_port, smtp_starttls, smtp_user, smtp_from; the password from
METERLINE_ALERTS_SMTP_PASSWORD). The HTML page is the body (with a plain-text part for clients
that show no HTML), the PDF is attached. The password never appears in an error.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from meterline.config import Config
from meterline.errors import ConfigError, StageError
from meterline.smtp import close_session, failure_reason, open_session
from meterline.smtp import settings as smtp_settings

if TYPE_CHECKING:
    from exports.reports import ReportResult


class ReportDeliveryError(StageError):
    """The report was written but could not be emailed; the message says why."""


def recipients(cfg: Config) -> list[str]:
    return [a.strip() for a in cfg.get("reports", "smtp_to").split(",") if a.strip()]


def is_configured(cfg: Config) -> bool:
    return bool(cfg.get("alerts", "smtp_host")) and bool(recipients(cfg))


def compose(cfg: Config, result: ReportResult) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"meterline: {result.title}"
    msg["From"] = cfg.get("alerts", "smtp_from")
    msg["To"] = ", ".join(recipients(cfg))
    msg["Message-ID"] = make_msgid(domain="meterline.local")
    msg["X-Meterline-Report"] = f"{result.kind} {result.key}"
    msg.set_content(result.text)
    msg.add_alternative(result.html.read_text(encoding="utf-8"), subtype="html")
    if result.pdf is not None:
        msg.add_attachment(result.pdf.read_bytes(), maintype="application", subtype="pdf",
                           filename=result.pdf.name)
    return msg


def send(cfg: Config, result: ReportResult) -> dict[str, Any]:
    """Send `result` by email. Raises ConfigError when no SMTP host or recipient is configured,
    ReportDeliveryError when the server refuses or cannot be reached."""
    to = recipients(cfg)
    host = cfg.get("alerts", "smtp_host")
    if not host or not to:
        raise ConfigError("reports are not emailed: set [alerts] smtp_host and [reports] smtp_to "
                          "(comma-separated) in meterline.toml")
    _, port, timeout = smtp_settings(cfg)
    password = cfg.secret("alerts", "smtp_password")
    msg = compose(cfg, result)
    try:
        smtp = open_session(cfg, password)
        try:
            refused = smtp.send_message(msg)
        finally:
            close_session(smtp)
    except Exception as exc:  # noqa: BLE001 - one line saying why, the password masked
        reason = failure_reason(exc, timeout)
        if password:
            reason = reason.replace(password, "***")
        raise ReportDeliveryError(
            f"{result.title}: written to {result.out_dir}, but not emailed via smtp {host}:{port}: "
            f"{reason}") from None
    delivered = [a for a in to if a not in refused]
    return {"sent": bool(delivered), "to": delivered, "refused": sorted(refused),
            "subject": str(msg["Subject"]), "message_id": str(msg["Message-ID"]),
            "attachment": result.pdf.name if result.pdf else None, "bytes": len(msg.as_bytes())}
