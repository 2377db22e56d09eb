"""Times as an admin types them: an ISO date or time, or `7d` / `12h` / `30m` ago."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

_AGO = {"d": "days", "h": "hours", "m": "minutes"}


def parse_when(text: str) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or `7d` / `12h` / `30m` ago."""
    value = text.strip()
    if value[:-1].isdigit() and value[-1:] in _AGO:
        return datetime.now(timezone.utc) - timedelta(**{_AGO[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; use 2026-11-01, 2026-11-01T09:30, or 7d / 12h ago"
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
