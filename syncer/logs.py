"""Structured JSON logs with a redaction processor composed in one place.

Every event is a structlog event with fields. Before rendering, `redact` masks values under
secret-looking keys and anything in a string that looks like a credential (bearer tokens,
`password=...`, Salesforce session ids), so a careless log call cannot leak a secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|authorization|api[_-]?key|session[_-]?id|credential|cookie)",
    re.IGNORECASE)
_SECRET_IN_TEXT = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=!-]{8,}"),
    re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key|session[_-]?id|"
               r"refresh[_-]?token|access[_-]?token|client[_-]?secret)[\"']?\s*[:=]\s*[\"']?)"
               r"[^\s\"'&,;}]+"),
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"),  # Salesforce session id
    re.compile(r"\bpat-[a-z0-9]{2,4}-[0-9a-f-]{20,}"),  # HubSpot private app token
)


def redact_text(text: str) -> str:
    """Mask credential-looking substrings of free text."""
    for pattern in _SECRET_IN_TEXT:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, "", 0):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]
           ) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field of the event."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines to stdout (or `stream`), redaction last before rendering."""
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
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
