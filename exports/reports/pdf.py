"""The PDF of a report: its HTML page printed by headless Chromium (Debian's `chromium` package).

Chromium runs with a throwaway profile, no network features, and only ever opens the local file
(the page has no external resource). A missing browser is a clear error, not a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from meterline.errors import StageError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 120
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
)


class ChromiumMissing(StageError):
    """No Chromium to print the PDF with."""


def find_chromium() -> str:
    """The Chromium executable: the first of BROWSERS on PATH."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing(
        "finance reports need Chromium to print their PDF, and none is installed: install "
        "Debian's chromium package (`apt-get install -y chromium`) or put chromium on PATH")


def run_chromium(args: list[str], timeout: float = TIMEOUT_SECONDS) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile folder (removed after) and `args`."""
    exe = find_chromium()
    with tempfile.TemporaryDirectory(prefix="meterline-chromium-") as profile:
        try:
            return subprocess.run(
                [exe, *FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True, text=True, timeout=timeout,
                env={**os.environ, "HOME": profile},
            )
        except subprocess.TimeoutExpired as exc:
            raise StageError(f"Chromium did not finish within {timeout:g} s") from exc


def print_pdf(html_file: Path, pdf_file: Path) -> Path:
    """Print `html_file` to `pdf_file` (A4, the page's own print styles, no browser header)."""
    pdf_file.unlink(missing_ok=True)
    res = run_chromium([
        "--no-pdf-header-footer", "--print-to-pdf-no-header", "--run-all-compositor-stages-before-draw",
        f"--print-to-pdf={pdf_file}", html_file.resolve().as_uri(),
    ])
    if res.returncode != 0 or not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        tail = " ".join((res.stderr or "").strip().splitlines()[-3:])[:300]
        raise StageError(f"Chromium could not print {html_file.name} (exit {res.returncode}): {tail}")
    return pdf_file
