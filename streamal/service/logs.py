"""Logging of the service: plain text, or JSON lines for log collectors.

A JSON line holds ``ts`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus
``sample_id`` when a record is about one sample (``extra={"sample_id": ...}``; only
per-sample warnings carry it, so ids never flood the log) and ``error`` with the
traceback of an exception.

Examples
--------
>>> import logging
>>> record = logging.LogRecord("streamal.service", logging.WARNING, "", 0, "lost %s", ("x",), None)
>>> record.sample_id = "s-1"
>>> line = json.loads(JsonFormatter().format(record))
>>> line["level"], line["message"], line["sample_id"]
('WARNING', 'lost x', 's-1')
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from streamal.redact import RedactingFilter

__all__ = ["JsonFormatter", "configure_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        sample_id = getattr(record, "sample_id", None)
        if sample_id is not None:
            data["sample_id"] = str(sample_id)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log to stderr at ``level`` as ``text`` or ``json`` lines (unless logging is set up)."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())  # no user:password@ address reaches the log
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
