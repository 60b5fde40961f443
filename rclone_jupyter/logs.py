"""One logging configuration for the whole process, with every secret masked in every record."""

from __future__ import annotations

import json
import logging
import sys
import threading

MASK = "*****"


class SecretMask(logging.Filter):
    """Replace every known secret value in a record's final text. Secrets can be added at any time."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        with self._lock:
            # Longest first, so a secret that contains another is masked whole.
            merged = set(self._secrets) | {s for s in secrets if s and len(s) >= 3}
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg = self.mask(record.getMessage())
            record.args = None
        return True


secret_mask = SecretMask()


def configure(level: str = "INFO") -> None:
    """Send our log lines to stderr as 'time LEVEL name: message'; the level is the user's choice."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_rclone_jupyter", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._rclone_jupyter = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(secret_mask)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("rclone_jupyter").setLevel(level)


def rclone_line(raw: str) -> tuple[str, dict | None] | None:
    """One line of rclone's stderr (--use-json-log), secrets masked: (text, record), or None for a blank line.

    `text` is what to show ("object: message" for a JSON record, else the line itself); `record` is the JSON
    record (level, stats, ...) or None for a line that is not one.
    """
    line = secret_mask.mask(raw.rstrip("\n"))
    if not line:
        return None
    record = None
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            pass
    if not isinstance(record, dict):
        return line, None
    msg = record.get("msg", "").rstrip()
    obj = record.get("object")
    return (f"{obj}: {msg}" if obj else msg), record


def human_size(n: int | float) -> str:
    n = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
