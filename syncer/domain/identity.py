"""One profile per real person across connectors.

v1 matches records by normalized email: the same address in HubSpot and Salesforce is one
person, so their activities feed one decision that is written back to both. A record
without an email stays a profile of its own (keyed by connector and id) rather than being
guessed into someone else's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from syncer.domain.types import Person


def normalize_email(email: str | None) -> str | None:
    """Lower-case and trim; None for anything that is not an address."""
    if not email:
        return None
    cleaned = email.strip().lower()
    local, at, domain = cleaned.partition("@")
    if not at or not local or "." not in domain:
        return None
    return cleaned


def person_key(person: Person) -> str:
    """The key of the profile a record belongs to."""
    return normalize_email(person.email) or f"record:{person.source}:{person.record_id}"


def merge_order(records: Iterable[Person], connector_order: Sequence[str]) -> list[Person]:
    """Records in precedence order for merged person fields: the connectors' order in the
    config, then record id.

    Deliberately not "most recently modified first": syncer's own writes bump modification
    times, so a freshness order would flip a person's company size between two CRMs that
    store it differently, and with it the score, on every run.
    """
    rank = {name: index for index, name in enumerate(connector_order)}
    return sorted(records, key=lambda r: (rank.get(r.source, len(rank)), r.source, r.record_id))


#: Personal mailbox domains: a shared gmail.com says nothing about a shared account.
DEFAULT_IGNORED_DOMAINS: tuple[str, ...] = (
    "gmail.com", "googlemail.com", "yahoo.com", "outlook.com", "hotmail.com", "live.com",
    "icloud.com", "aol.com", "proton.me", "protonmail.com", "gmx.de", "web.de",
)
