"""What `syncer setup` asks of a CRM: which fields exist, and creating a missing one.

The command (syncer/run/setup_fields.py) decides which fields syncer needs and of what kind;
each connector's FieldAdmin translates a FieldNeed into its CRM's definition (a HubSpot
property, a Salesforce custom field) and creates it, or says the user may not and hands
back the exact definition an admin must deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

#: picklist: one of `options` (the config's stage values); number: a score or points;
#: text: a short string (grades, owner reason); long_text: up to `length` characters.
FieldKind = Literal["picklist", "number", "text", "long_text"]


@dataclass(frozen=True)
class FieldNeed:
    """One CRM field syncer reads or writes, as the config maps it."""

    name: str
    kind: FieldKind
    label: str
    description: str
    #: a picklist's (value, label) pairs, in order
    options: tuple[tuple[str, str], ...] = ()
    length: int = 255
    #: decimal places of a number (points may be fractional; totals are whole)
    scale: int = 0


class NoRight(Exception):
    """The CRM user may not create fields; `definition` is what an admin must deploy."""

    def __init__(self, message: str, definition: str) -> None:
        super().__init__(message)
        self.definition = definition


class FieldAdmin(Protocol):
    """One CRM's side of `syncer setup`."""

    #: the record types syncer writes (HubSpot: contacts; Salesforce: Lead, Contact)
    objects: tuple[str, ...]
    #: the record types account fields live on (HubSpot: companies; Salesforce: Account):
    #: where `set_up(..., account_needs=...)` checks and creates them
    account_objects: tuple[str, ...]

    def present(self, object_name: str) -> set[str]:
        """Lower-case names of the fields `object_name` has now."""
        ...

    def creatable(self, name: str) -> bool:
        """Whether setup may create a field of this name (never a standard field)."""
        ...

    def prepare(self, dry_run: bool) -> list[str]:
        """Anything needed before fields (HubSpot: the property group); lines to print."""
        ...

    def create(self, object_name: str, need: FieldNeed) -> None:
        """Create the field; NoRight when the user lacks the permission."""
        ...

    def definition(self, object_name: str, need: FieldNeed) -> str:
        """The field's definition as an admin would deploy it by hand."""
        ...

    def close(self) -> None:
        ...
