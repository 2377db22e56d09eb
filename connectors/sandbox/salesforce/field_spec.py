"""What the Salesforce sandbox knows of one field and one sObject: `FieldSpec` (a field as
describe() reports it) and `ObjectSchema` (an sObject's key prefix and fields), and
`field_spec`, the short form the field tables (schema.py, standard_fields*.py) are
written in. Kept apart from the tables so those can live in modules of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldSpec:
    """One field of an sObject as describe() would report it."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    updateable: bool = False
    nillable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    custom: bool = False
    precision: int = 0
    scale: int = 0
    #: whether an insert may set it; None: the same as `updateable`
    create: bool | None = None
    #: the org fills it in when an insert leaves it out (describe's defaultedOnCreate)
    defaulted: bool = False
    #: the picklist value an insert gets when it sends none
    default: str | None = None

    @property
    def filterable(self) -> bool:
        return self.type != "address"

    @property
    def createable(self) -> bool:
        return self.updateable if self.create is None else self.create

    @property
    def required_on_create(self) -> bool:
        """An insert without a value fails REQUIRED_FIELD_MISSING (LastName, Company)."""
        return self.createable and not self.nillable and not self.defaulted


@dataclass(frozen=True)
class ObjectSchema:
    """An sObject type: its key prefix and fields, looked up case-insensitively like SOQL."""

    name: str
    key_prefix: str
    label_plural: str
    fields: tuple[FieldSpec, ...]
    #: whether the sandbox accepts inserts of this type (POST sobjects, composite/sobjects)
    createable: bool = False
    _by_name: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name.lower(): f for f in self.fields})
        object.__setattr__(self, "_by_relationship", {
            f.relationship_name.lower(): f for f in self.fields if f.relationship_name})

    def field(self, name: str) -> FieldSpec | None:
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> FieldSpec | None:
        return self._by_relationship.get(name.lower())


def label_of(name: str) -> str:
    """'Syncer_Fit_Grade__c' -> 'Syncer Fit Grade'; 'NumberOfEmployees' -> 'Number Of Employees'."""
    base = name.removesuffix("__c").replace("_", " ")
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base)


def field_spec(name: str, type_: str, length: int = 0, *, rw: bool = False, required: bool = False,
       picklist: tuple[str, ...] = (), restricted: bool = False, to: tuple[str, ...] = (),
       rel: str | None = None, precision: int = 0, scale: int = 0,
       defaulted: bool = False, default: str | None = None) -> FieldSpec:
    return FieldSpec(name=name, type=type_, label=label_of(name), length=length, updateable=rw,
                     nillable=not required, picklist=picklist, restricted=restricted,
                     reference_to=to, relationship_name=rel, custom=name.endswith("__c"),
                     precision=precision, scale=scale,
                     defaulted=defaulted or default is not None, default=default)
