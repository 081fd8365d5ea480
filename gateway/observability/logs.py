"""How parkgate's log lines look: one JSON object per line in production, readable text in the sandbox.

Every logger is the standard library's (`logging.getLogger("parkgate.…")`); this module only sets the
root handler's format and level, once, for `parkgate serve` and `parkgate sandbox`
(`--log-format`, `--log-level`, or `observability.logging` in the configuration).

    json   {"ts": "2026-12-05T16:40:39.123Z", "level": "INFO", "logger": "parkgate.request",
            "message": "POST /graphql 200 3.10 ms …", "request_id": "…", "client_id": "…", …}
    text   INFO parkgate.request: POST /graphql 200 3.10 ms id=… client=… op=… cost=…

Fields given as `extra=` become JSON fields; `None` fields are left out. A line written while a
request is served carries its `request_id` (gateway/observability/request_log.py).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from gateway.observability.request_log import RequestIdFilter


class LogFormat(StrEnum):
    JSON = "json"
    TEXT = "text"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


#: LogRecord's own attributes: whatever else a record carries came from `extra=`
#: (uvicorn adds `color_message`, its message with terminal colours: not for a JSON line)
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the `extra=` fields, and the
    exception's traceback as text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")


def configure_logging(level: LogLevel = LogLevel.INFO, format: LogFormat = LogFormat.JSON) -> None:
    """The root logger writes `format` lines at `level` and above to stderr (replacing any handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if format is LogFormat.JSON else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.value)
    # Every vendor call is routine (pollers make several a second): the HTTP client's line for each
    # is for debugging, and /metrics counts them.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level is LogLevel.DEBUG else logging.WARNING)
    # uvicorn's own lines (startup, errors) in the same format; its access log stays off (gateway/cli.py)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
