"""SMTP for every meterline email (reconciliation alerts, finance reports): one way to open a
session from `[alerts]` (smtp_host, smtp_port, smtp_starttls, smtp_user, timeout_seconds; the
password from METERLINE_ALERTS_SMTP_PASSWORD) and one way to say in a line why a send failed.
Callers mask secrets in what they print."""

from __future__ import annotations

import smtplib
import socket
import ssl

from meterline.config import Config


def settings(cfg: Config) -> tuple[str, int, float]:
    """(host, port, timeout in seconds) of the configured server."""
    return (cfg.get("alerts", "smtp_host"), int(cfg.get("alerts", "smtp_port")),
            float(cfg.get("alerts", "timeout_seconds")))


def open_session(cfg: Config, password: str) -> smtplib.SMTP:
    """A session ready to send: connected, STARTTLS when configured, logged in when a user is
    configured. Raises what smtplib or the socket raised; a half-opened session is closed."""
    host, port, timeout = settings(cfg)
    smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if cfg.get("alerts", "smtp_starttls"):
            smtp.starttls(context=ssl.create_default_context())
        user = cfg.get("alerts", "smtp_user")
        if user:
            smtp.login(user, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def close_session(smtp: smtplib.SMTP) -> None:
    """QUIT, or just close when the server is gone: what was sent is already accepted or reported."""
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001 - see the docstring
        smtp.close()


def failure_reason(exc: BaseException, timeout: float) -> str:
    """One line saying why an SMTP send failed (before masking)."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"recipients refused: {', '.join(sorted(exc.recipients))}"
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return f"SMTP {exc.smtp_code} {text}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"
