"""One profile per real person across connectors.

v1 matches records by normalized email: the same address in HubSpot and Salesforce is one
person, so their activities feed one decision that is written back to both. A record
without an email stays a profile of its own (keyed by connector and id) rather than being
guessed into someone else's.
"""

from __future__ import annotations

from syncer.domain import Person


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
