"""What a write may put in a Salesforce sandbox field, and how a refusal looks: the
SaveResult error entry, the whole-request and per-record refusals, a field looked up by
name, a JSON value coerced to the field's type as Salesforce's deserializer does, and the
compound fields recomputed from their parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from connectors.sandbox.salesforce.rows import FieldValue, Row, text_or_none
from connectors.sandbox.salesforce.schema import FieldSpec, ObjectSchema
from syncer.domain.json_values import JSONObject, JSONValue


@dataclass(frozen=True)
class SaveError:
    """One entry of a SaveResult's `errors` list."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> JSONObject:
        return {"statusCode": self.status_code, "message": self.message,
                "fields": list(self.fields)}


class RequestRejected(Exception):
    """The whole request is refused (HTTP 400), before any record is looked at."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


class RecordRejected(Exception):
    """One record of a write cannot be saved; the others may be."""

    def __init__(self, errors: list[SaveError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors


def field_of(schema: ObjectSchema, key: str,
             absent: set[tuple[str, str]] | None = None) -> FieldSpec:
    """The field `key` names (any case); RequestRejected INVALID_FIELD if there is none
    (or it is one of the org's `absent` custom fields)."""
    spec = schema.field(key)
    if spec is None or (schema.name, key.lower()) in (absent or ()):
        raise RequestRejected("INVALID_FIELD",
                              f"No such column '{key}' on sobject of type {schema.name}")
    return spec


def coerce(schema: ObjectSchema, spec: FieldSpec, value: JSONValue) -> FieldValue:
    """A JSON value as the field's Python type, leniently like Salesforce's deserializer."""
    if value is None:
        return None
    kind = "VALUE_STRING" if isinstance(value, str) else type(value).__name__.upper()
    problem = RequestRejected(
        "JSON_PARSER_ERROR", f"Cannot deserialize instance of {spec.type} from {kind} value "
        f"{value} or request may be missing a required field")
    if isinstance(value, (dict, list)):
        raise problem  # no field takes an object or an array
    try:
        if spec.type in ("double", "currency", "percent"):
            if isinstance(value, bool):
                raise problem
            return float(value)
        if spec.type == "int":
            number = float(value) if not isinstance(value, bool) else None
            if number is None or not number.is_integer():
                raise problem
            return int(number)
        if spec.type == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):
                raise problem
            return value
        if spec.type == "datetime":
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if spec.type == "date":
            return date.fromisoformat(str(value))
    except (TypeError, ValueError) as error:
        raise problem from error
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def derive(schema: ObjectSchema, row: Row) -> None:
    """Recompute the read-only compound fields (Name, Address) from their parts, and an
    Opportunity's IsClosed and IsWon from its StageName."""
    if schema.name == "Opportunity":
        stage = str(row.get("StageName") or "")
        row["IsClosed"], row["IsWon"] = stage.startswith("Closed"), stage == "Closed Won"
    if schema.field("Name") is not None and schema.field("FirstName") is not None:
        row["Name"] = " ".join(p for p in (text_or_none(row, "FirstName"),
                                           text_or_none(row, "LastName")) if p)
    for compound, country in (("Address", "Country"), ("MailingAddress", "MailingCountry")):
        if schema.field(compound) is not None:
            row[compound] = None if not row.get(country) else {
                "city": None, "country": text_or_none(row, country), "countryCode": None,
                "geocodeAccuracy": None, "latitude": None, "longitude": None,
                "postalCode": None, "state": None, "stateCode": None, "street": None}
