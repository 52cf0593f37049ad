"""JSON logging with secret redaction, shared by every service: one object per line, with the id
of the request being served on every line logged while serving it."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time

import orjson

_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")

LOGGED_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("logged_request_id", default="")
"""The id of the request the current task serves ("" outside one). Set once when a request gets
its id: each request is served in a task of its own, whose context ends with it, so it is never reset."""


def redact(text: str) -> str:
    """Replace anything that looks like an API key with its first characters, and a bearer
    token whatever its shape."""
    return _BEARER.sub(r"\1[redacted]", _SECRET.sub(r"\1…", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; messages and exceptions are redacted."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = LOGGED_REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def configure_logging(service: str, level: str) -> None:
    """Send JSON logs to stderr at the given level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The embedded libraries log request-level detail at INFO.
    for noisy in ("aiohttp.access", "nats", "grpc"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
