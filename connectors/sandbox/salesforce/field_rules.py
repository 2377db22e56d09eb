"""What a write may put in a Salesforce sandbox field, and how a refusal looks: the
SaveResult error entry, the whole-request and per-record refusals, a field looked up by
name, a JSON value coerced to the field's type as Salesforce's deserializer does, and the
compound fields recomputed from their parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from connectors.sandbox.salesforce.field_spec import ADDRESS_PARTS
from connectors.sandbox.salesforce.picklists import STAGE_FORECAST
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
    """Recompute what the org computes: the read-only compound fields (Name, each Address)
    from their parts, an Opportunity's IsClosed and IsWon (and, when unset, Probability and
    forecast category) from its StageName, a Task's IsClosed and IsHighPriority, an Event's
    start and end from ActivityDateTime and DurationInMinutes."""
    name = schema.name
    if name == "Opportunity":
        _opportunity(row)
    elif name == "Task":
        row["IsClosed"] = row.get("Status") == "Completed"
        row["IsHighPriority"] = row.get("Priority") == "High"
    elif name == "Event":
        _event(row)
    if schema.field("FirstName") is not None and schema.field("Name") is not None:
        row["Name"] = " ".join(p for p in (text_or_none(row, "FirstName"),
                                           text_or_none(row, "LastName")) if p)
    for compound, prefix in _addresses(schema):
        parts = {part: row.get(prefix + part) for part in ADDRESS_PARTS}
        row[compound] = None if all(v is None for v in parts.values()) else {
            "city": parts["City"], "country": parts["Country"], "countryCode": None,
            "geocodeAccuracy": parts["GeocodeAccuracy"], "latitude": parts["Latitude"],
            "longitude": parts["Longitude"], "postalCode": parts["PostalCode"],
            "state": parts["State"], "stateCode": None, "street": parts["Street"]}


_ADDRESSES: dict[str, tuple[tuple[str, str], ...]] = {}


def _addresses(schema: ObjectSchema) -> tuple[tuple[str, str], ...]:
    """(compound field, prefix of its parts) of each address of `schema` (cached: derive
    runs on every generated row)."""
    found = _ADDRESSES.get(schema.name)
    if found is None:
        found = tuple((spec.name, spec.name.removesuffix("Address"))
                      for spec in schema.fields if spec.type == "address")
        _ADDRESSES[schema.name] = found
    return found


def _opportunity(row: Row) -> None:
    stage = str(row.get("StageName") or "")
    row["IsClosed"], row["IsWon"] = stage.startswith("Closed"), stage == "Closed Won"
    probability, category = STAGE_FORECAST.get(stage, (None, None))
    if row.get("Probability") is None and probability is not None:
        row["Probability"] = float(probability)
    if row.get("ForecastCategoryName") is None:
        row["ForecastCategoryName"] = category
    row["ForecastCategory"] = FORECAST_API_NAMES.get(str(row.get("ForecastCategoryName")))


def _event(row: Row) -> None:
    start = row.get("ActivityDateTime") or row.get("StartDateTime")
    if isinstance(start, datetime):
        row["ActivityDateTime"] = row["StartDateTime"] = start
        minutes = row.get("DurationInMinutes")
        if isinstance(minutes, int):
            row["EndDateTime"] = start + timedelta(minutes=minutes)
    end = row.get("EndDateTime")
    row["EndDate"] = end.date() if isinstance(end, datetime) else row.get("ActivityDate")


#: ForecastCategoryName (the label a rep picks) -> ForecastCategory (its API value)
FORECAST_API_NAMES = {"Omitted": "Omitted", "Pipeline": "Pipeline", "Best Case": "BestCase",
                      "Commit": "Forecast", "Closed": "Closed"}
