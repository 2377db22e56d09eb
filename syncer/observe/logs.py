"""Structured JSON logs with a redaction processor composed in one place.

Every event is a structlog event with fields. Before rendering, `redact` masks values under
secret-looking keys and anything in a string that looks like a credential (bearer tokens,
`password=...`, Salesforce session ids), so a careless log call cannot leak a secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TextIO

import structlog

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|authorization|api[_-]?key|session[_-]?id|credential|cookie|"
    r"webhook)", re.IGNORECASE)
#: (pattern, replacement): what in free text looks like a credential, and its masked form.
_SECRET_IN_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=!-]{8,}"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key|session[_-]?id|"
                r"refresh[_-]?token|access[_-]?token|client[_-]?secret|authorization)"
                r"[\"']?\s*[:=]\s*[\"']?)(?!bearer\b|basic\b)[^\s\"'&,;}]+"),
     rf"\1{REDACTED}"),
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"), REDACTED),  # Salesforce session
    (re.compile(r"\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}"), REDACTED),  # HubSpot private app token
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), REDACTED),  # JWT
    # user:password@ in a URL (database URLs, proxies)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    # Slack (and look-alike) webhook paths: the path is the credential
    (re.compile(r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\s\"']+"),
     rf"\1{REDACTED}"),
)


def redact_text(text: str) -> str:
    """Mask credential-looking substrings of free text."""
    for pattern, replacement in _SECRET_IN_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: object) -> object:
    if _SECRET_KEY.search(key) and value not in (None, "", 0):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


def redact(_logger: object, _method: str, event_dict: MutableMapping[str, object]
           ) -> MutableMapping[str, object]:
    """structlog processor: mask secrets in every field of the event."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Bind fields (run_id, connector) on every event logged inside the block, in this
    thread (structlog contextvars); the previous values come back afterwards."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield


class CurrentStream:
    """sys.stdout or sys.stderr as it is when a line is written, not when logging was
    configured: whoever replaces them later (a test runner capturing output, a daemon
    redirecting it) gets the lines, and nothing writes to a stream closed since."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        stream: TextIO = getattr(sys, self.name)
        return stream.write(text)

    def flush(self) -> None:
        stream: TextIO = getattr(sys, self.name)
        stream.flush()


def _target(stream: TextIO | None) -> TextIO | CurrentStream:
    if stream is None or stream is sys.stdout:
        return CurrentStream("stdout")
    if stream is sys.stderr:
        return CurrentStream("stderr")
    return stream


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines to stdout (or `stream`), redaction last before rendering. The process's
    own stdout and stderr are looked up at each line (CurrentStream)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(_target(stream)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
