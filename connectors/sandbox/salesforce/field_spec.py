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


def field_spec(name: str, type_: str, length: int = 0, *, rw: bool = False,
               required: bool = False, picklist: tuple[str, ...] = (),
               restricted: bool = False, to: tuple[str, ...] = (), rel: str | None = None,
               precision: int = 0, scale: int = 0, defaulted: bool = False,
               default: str | None = None, create: bool | None = None) -> FieldSpec:
    """A field in short: `rw` createable and updateable (`create` overrides createable:
    True for a field set on insert only), `required` not nillable, `to` and `rel` a
    reference's targets and relationship name."""
    return FieldSpec(name=name, type=type_, label=label_of(name), length=length, updateable=rw,
                     nillable=not required, picklist=picklist, restricted=restricted,
                     reference_to=to, relationship_name=rel, custom=name.endswith("__c"),
                     precision=precision, scale=scale,
                     defaulted=defaulted or default is not None, default=default,
                     create=create)


def checkbox(name: str, *, rw: bool = True, create: bool | None = None) -> FieldSpec:
    """A standard boolean: never null (false unless set), so defaulted on create."""
    return field_spec(name, "boolean", rw=rw, required=True, defaulted=True, create=create)


def reference(name: str, *targets: str, rw: bool = True, required: bool = False,
              create: bool | None = None, defaulted: bool = False) -> FieldSpec:
    """A lookup field: `AccountId` -> relationship `Account`, `WhoId` -> `Who`."""
    return field_spec(name, "reference", 18, rw=rw, required=required, to=targets,
                      rel=name.removesuffix("Id"), create=create, defaulted=defaulted)


def system_fields(master: str | None = None) -> tuple[FieldSpec, ...]:
    """Id, IsDeleted and the audit fields every sObject has (set by the org, never by a
    write); `master`: the object a merge's MasterRecordId points at."""
    merged = (reference("MasterRecordId", master, rw=False),) if master else ()
    return (field_spec("Id", "id", 18, required=True), checkbox("IsDeleted", rw=False),
            *merged,
            field_spec("CreatedDate", "datetime", required=True),
            reference("CreatedById", "User", rw=False, required=True),
            field_spec("LastModifiedDate", "datetime", required=True),
            reference("LastModifiedById", "User", rw=False, required=True),
            field_spec("SystemModstamp", "datetime", required=True))


def viewed_fields() -> tuple[FieldSpec, ...]:
    """When the running user last saw the record, and its last activity (read-only)."""
    return (field_spec("LastActivityDate", "date"), field_spec("LastViewedDate", "datetime"),
            field_spec("LastReferencedDate", "datetime"))


#: GeocodeAccuracy's values (a restricted picklist on every address)
GEOCODE_ACCURACY = ("Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip",
                    "Neighborhood", "City", "County", "State", "Unknown")
#: the parts of a compound address, by suffix, in its JSON order
ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude",
                 "GeocodeAccuracy")


def address_fields(prefix: str) -> tuple[FieldSpec, ...]:
    """A compound address and its parts: `Billing` -> BillingStreet ... BillingAddress
    (a Lead's has no prefix: Street ... Address)."""
    return (field_spec(f"{prefix}Street", "textarea", 255, rw=True),
            field_spec(f"{prefix}City", "string", 40, rw=True),
            field_spec(f"{prefix}State", "string", 80, rw=True),
            field_spec(f"{prefix}PostalCode", "string", 20, rw=True),
            field_spec(f"{prefix}Country", "string", 80, rw=True),
            field_spec(f"{prefix}Latitude", "double", rw=True, precision=18, scale=15),
            field_spec(f"{prefix}Longitude", "double", rw=True, precision=18, scale=15),
            field_spec(f"{prefix}GeocodeAccuracy", "picklist", 40, rw=True,
                       picklist=GEOCODE_ACCURACY, restricted=True),
            field_spec(f"{prefix}Address", "address"))


def phone(name: str) -> FieldSpec:
    return field_spec(name, "phone", 40, rw=True)
