"""Creating HubSpot contacts for people syncer knows from another CRM.

HubSpot's batch create is all or nothing for a known email: one input whose email the
portal already holds fails the whole batch with 409 CONFLICT "Contact already exists.
Existing ID: <id>", naming only the first such contact (HubSpot/hubspot-api-python#51).
So after a 409 every email of the batch is looked up at once (a batch read by email,
which unlike search is not behind an index), the people found are linked to their
contacts and the others are sent again: known emails cost two extra requests per batch,
however many there are, and never block the new people. When the lookup finds none (the
conflict is on an address the contact holds besides its email, e.g. after a merge) the
batch is split in halves until it is one person, who is linked to the id the 409 names.
A 400 for the whole batch is bisected the same way down to the input HubSpot refuses.

The same 409 makes creation safe to repeat: a batch whose answer was lost (a timeout
after HubSpot created it) is retried by the retry layer and links the contacts it made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from connectors.hubspot import mapping
from connectors.hubspot.errors import Conflict, RequestRejected
from syncer.domain.connector import ConnectorError
from syncer.domain.types import CreateResult, NewPerson

#: Contact property -> NewPerson attribute written at creation.
CREATE_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("email", "email"), ("firstname", "first_name"), ("lastname", "last_name"),
    ("jobtitle", "title"), ("company", "company"), ("industry", "industry"),
    ("country", "country"),
)
OBJECT_TYPE = "contact"


@dataclass(frozen=True)
class BatchAnswer:
    """What one batch create call said: created contact ids and per-input failures
    (code, message), both by the input's trace id (objectWriteTraceId)."""

    created: Mapping[str, str]
    failed: Mapping[str, tuple[str, str]]


#: Sends one batch of (trace id, properties); raises Conflict or RequestRejected.
SendBatch = Callable[[list[tuple[str, dict[str, str]]]], BatchAnswer]
#: The contacts holding these emails: lowercase email -> contact id (absent: none).
FindByEmail = Callable[[list[str]], dict[str, str]]


def contact_properties(person: NewPerson) -> dict[str, str]:
    """The properties a new contact gets: the person's fields, then syncer's decided
    values (`person.values`, CRM property -> value); empty values are left out."""
    properties = {prop: str(value) for prop, attribute in CREATE_PROPERTIES
                  if (value := getattr(person, attribute)) not in (None, "")}
    properties.update({name: str(value) for name, value in person.values.items()
                       if value not in (None, "")})
    properties["email"] = person.email.strip()
    return properties


class ContactCreation:
    """One `create` call's work: dedupe by email, batches of `batch_size`, conflicts."""

    def __init__(self, send: SendBatch, find: FindByEmail, batch_size: int = 100) -> None:
        self._send = send
        self._find = find
        self._batch_size = batch_size

    def run(self, people: Sequence[NewPerson]) -> list[CreateResult]:
        """One result per person, in order. Two people with one email become one contact;
        the second is linked to it (`existed`)."""
        first_of: dict[str, int] = {}
        outcomes: dict[int, CreateResult] = {}
        for index, person in enumerate(people):
            email = person.email.strip().lower()
            if not email:
                outcomes[index] = CreateResult(
                    person.key, False, error_code="MISSING_EMAIL",
                    message="HubSpot contacts are matched by email; this person has none")
            else:
                first_of.setdefault(email, index)
        unique = sorted(first_of.values())
        for start in range(0, len(unique), self._batch_size):
            chunk = unique[start:start + self._batch_size]
            outcomes.update(self._batch(people, {i: contact_properties(people[i])
                                                 for i in chunk}))
        results = []
        for index, person in enumerate(people):
            if index in outcomes:
                results.append(outcomes[index])
                continue
            first = outcomes[first_of[person.email.strip().lower()]]
            results.append(replace(first, key=person.key, existed=first.existed or first.ok))
        return results

    def _batch(self, people: Sequence[NewPerson],
               inputs: dict[int, dict[str, str]]) -> dict[int, CreateResult]:
        if not inputs:
            return {}
        try:
            answer = self._send([(str(i), props) for i, props in inputs.items()])
        except Conflict as conflict:
            return self._after_conflict(people, inputs, conflict)
        except RequestRejected as rejected:
            if len(inputs) == 1:
                [index] = inputs
                named = ", ".join(rejected.error.fields)
                return {index: CreateResult(
                    people[index].key, False,
                    error_code=mapping.error_code(rejected.category, rejected.message),
                    message=f"{named}: {rejected.message}" if named else rejected.message)}
            return self._halves(people, inputs)
        outcomes: dict[int, CreateResult] = {}
        for index in inputs:
            key, trace = people[index].key, str(index)
            if trace in answer.created:
                outcomes[index] = CreateResult(key, True, answer.created[trace], OBJECT_TYPE)
            elif trace in answer.failed:
                code, message = answer.failed[trace]
                outcomes[index] = CreateResult(key, False, error_code=code, message=message)
            else:
                outcomes[index] = CreateResult(
                    key, False, error_code="UNCONFIRMED",
                    message="HubSpot answered without this contact; the next create links "
                            "it if it was made")
        return outcomes

    def _after_conflict(self, people: Sequence[NewPerson], inputs: dict[int, dict[str, str]],
                        conflict: Conflict) -> dict[int, CreateResult]:
        existing = conflict.existing_id
        if len(inputs) == 1:
            [index] = inputs
            if existing is None:
                return {index: CreateResult(people[index].key, False, error_code="CONFLICT",
                                            message=conflict.message)}
            return {index: self._linked(people[index], existing)}
        try:
            found = self._find([props["email"].strip().lower() for props in inputs.values()])
        except ConnectorError:
            found = {}
        linked = {i: self._linked(people[i], found[props["email"].strip().lower()])
                  for i, props in inputs.items() if props["email"].strip().lower() in found}
        if not linked:
            return self._halves(people, inputs)
        rest = {i: props for i, props in inputs.items() if i not in linked}
        return {**linked, **self._batch(people, rest)}

    def _halves(self, people: Sequence[NewPerson],
                inputs: dict[int, dict[str, str]]) -> dict[int, CreateResult]:
        items = list(inputs.items())
        half = len(items) // 2
        return {**self._batch(people, dict(items[:half])),
                **self._batch(people, dict(items[half:]))}

    @staticmethod
    def _linked(person: NewPerson, existing: str) -> CreateResult:
        return CreateResult(person.key, True, existing, OBJECT_TYPE, existed=True)
