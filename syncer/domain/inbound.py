"""Hand-raises from outside the CRMs: the person + activity shape a webhook or a list
import carries, how it is checked, and how signed requests are verified.

One shape serves `POST /webhooks/generic` and `syncer import FILE.csv` (docs/webhooks.md),
so a webinar tool's webhook and the same webinar's CSV export land identically: a record
of a source named after the sender (record id: the normalized email), joined to the CRM
people with that email by the ordinary identity code, plus one activity whose id is the
sender's event id, which is what makes a replay or a re-import change nothing.

Signatures are pure functions of (secret, request parts, clock reading passed in): the
server supplies the request and the time, so they are tested without a server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import unquote

from syncer.domain.failures import BadInput
from syncer.domain.identity import normalize_email
from syncer.domain.types import Activity, ActivityType, Person

#: person fields a hand-raise may carry (syncer's names, as in the domain's Person)
PERSON_FIELDS = ("email", "first_name", "last_name", "title", "company", "industry",
                 "employees", "country")
#: the object type of a record kept for a non-CRM source
OBJECT_TYPE = "person"
#: why a request was refused (the label of syncer_webhook_rejected)
Rejection = Literal["unsigned", "bad_signature", "stale", "replay", "unknown_source",
                    "bad_payload"]


class HandRaiseInvalid(BadInput):
    """A hand-raise that cannot be used; `problems` name each field and its fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class HandRaise:
    """One person, and what they did, as a non-CRM source reports it."""

    event_id: str
    person: Mapping[str, str | int | None]
    activity: ActivityType | None = None
    occurred_at: datetime | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def email(self) -> str:
        return str(self.person["email"])

    def record(self, source: str) -> Person:
        """The person as a record of `source` (id: the normalized email)."""
        def text(name: str) -> str | None:
            value = self.person.get(name)
            return None if value is None else str(value)
        employees = self.person.get("employees")
        return Person(source=source, record_id=self.email, object_type=OBJECT_TYPE,
                      email=self.email, first_name=text("first_name"),
                      last_name=text("last_name"), title=text("title"),
                      company=text("company"), industry=text("industry"),
                      employees=int(employees) if employees is not None else None,
                      country=text("country"), updated_at=self.occurred_at)

    def activity_of(self, source: str) -> Activity | None:
        if self.activity is None or self.occurred_at is None:
            return None
        return Activity(source=source, source_id=self.event_id, record_id=self.email,
                        type=self.activity, occurred_at=self.occurred_at,
                        attributes=dict(self.attributes))

    def as_json(self) -> dict[str, object]:
        """What the state keeps of it: the webhook's own shape (read back by `from_json`)."""
        data: dict[str, object] = {"event_id": self.event_id, "person": dict(self.person)}
        if self.activity is not None:
            data["activity"] = {
                "type": self.activity.value, "attributes": dict(self.attributes),
                "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> HandRaise:
        """A stored hand-raise, checked again (HandRaiseInvalid if this syncer no longer
        accepts it, e.g. an activity type since removed)."""
        return parse_hand_raise(data, now=datetime.now(timezone.utc))


def _instant(value: object, where: str, problems: list[str]) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a time. Fix: use ISO 8601, e.g. "
                        "2026-12-07T09:30:00Z")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _person(data: object, problems: list[str]) -> dict[str, str | int | None]:
    if not isinstance(data, Mapping):
        problems.append("person: missing or not an object. Fix: send "
                        '"person": {"email": "ada@example.com", ...}')
        return {}
    unknown = sorted(set(map(str, data)) - set(PERSON_FIELDS))
    if unknown:
        problems.append(f"person: unknown field(s) {', '.join(unknown)}. Fix: use "
                        f"{', '.join(PERSON_FIELDS)}")
    person: dict[str, str | int | None] = {}
    for name in PERSON_FIELDS:
        value = data.get(name)
        text = None if value is None else str(value).strip() or None
        if name == "employees" and text is not None:
            if not text.replace(",", "").isdigit():
                problems.append(f"person.employees: {value!r} is not a whole number. Fix: "
                                "e.g. 250, or leave it out")
                continue
            person[name] = int(text.replace(",", ""))
            continue
        person[name] = text
    email = normalize_email(str(person.get("email") or ""))
    if email is None:
        problems.append(f"person.email: {data.get('email')!r} is not an email address. "
                        "Fix: every hand-raise needs the person's email (name@domain.tld)")
    person["email"] = email
    return person


def parse_hand_raise(data: object, *, now: datetime) -> HandRaise:
    """Check one hand-raise (the JSON object of docs/webhooks.md); raises HandRaiseInvalid
    naming every bad field at once. An activity dated in the future is refused: it would
    score as fresh for longer than it is."""
    if not isinstance(data, Mapping):
        raise HandRaiseInvalid(["(body): expected a JSON object with event_id, person and "
                                "activity. Fix: see docs/webhooks.md"])
    problems: list[str] = []
    event_id = str(data.get("event_id") or "").strip()
    if not event_id or len(event_id) > 200:
        problems.append("event_id: missing (or over 200 characters). Fix: send the "
                        "sender's own id of this event; a resend with the same id is "
                        "ignored")
    person = _person(data.get("person"), problems)
    activity = data.get("activity")
    kind: ActivityType | None = None
    occurred: datetime | None = None
    attributes: dict[str, str] = {}
    if activity is not None:
        if not isinstance(activity, Mapping):
            problems.append('activity: not an object. Fix: "activity": {"type": '
                            '"demo_request", "occurred_at": "..."}')
        else:
            kind, occurred, attributes = _activity(activity, now, problems)
    if problems:
        raise HandRaiseInvalid(problems)
    return HandRaise(event_id, person, kind, occurred, attributes)


def _activity(data: Mapping[object, object], now: datetime, problems: list[str]
              ) -> tuple[ActivityType | None, datetime | None, dict[str, str]]:
    kind: ActivityType | None = None
    try:
        kind = ActivityType(str(data.get("type") or "").strip().lower())
    except ValueError:
        problems.append(f"activity.type: {data.get('type')!r} is not an activity syncer "
                        f"scores. Fix: use one of {', '.join(t.value for t in ActivityType)}")
    raw_time = data.get("occurred_at")
    occurred = _instant(raw_time, "activity.occurred_at", problems)
    if raw_time in (None, ""):
        problems.append("activity.occurred_at: missing. Fix: when it happened, ISO 8601")
    elif occurred is not None and (occurred - now).total_seconds() > 300:
        problems.append(f"activity.occurred_at: {occurred.isoformat()} is in the future. "
                        "Fix: send the time it happened (UTC, or with its offset)")
    raw = data.get("attributes") or {}
    attributes: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        problems.append("activity.attributes: not an object. Fix: e.g. "
                        '{"form": "Demo request"}')
    else:
        attributes = {str(k): str(v) for k, v in raw.items() if v is not None}
    return kind, occurred, attributes


# -- signatures ---------------------------------------------------------------------------
def hubspot_v3_signature(secret: str, method: str, uri: str, body: bytes,
                         timestamp: str) -> str:
    """HubSpot's X-HubSpot-Signature-v3: base64(HMAC-SHA256(client secret, method + URI +
    body + X-HubSpot-Request-Timestamp)), the URI with its %-escapes decoded as HubSpot
    decodes them before signing."""
    message = method.upper().encode() + unquote(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """X-Syncer-Signature: `sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body), so
    the timestamp cannot be changed without the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def check_timestamp(stamp: str | None, now: datetime, max_age_seconds: int, *,
                    millis: bool) -> Rejection | None:
    """`stale` for a timestamp older than the window (or further ahead than it: a clock
    that far off cannot be told from a replay), `unsigned` for none or garbage."""
    if not stamp or not stamp.strip().isdigit():
        return "unsigned"
    seconds = int(stamp) / 1000 if millis else int(stamp)
    return "stale" if abs(now.timestamp() - seconds) > max_age_seconds else None


def same_signature(expected: str, given: str | None) -> bool:
    """Constant-time comparison (a timing difference must not leak the signature)."""
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())
