"""A row of the Salesforce sandbox's org: one record's stored field values, by field name.

Values are Python values of the field's type (schema.to_json renders them for the wire):
text, ids and picklists as str, numbers as int or float, checkboxes as bool, dates and
datetimes (UTC) as such, the compound address as a mapping of its parts, null as None.
Every module of the org, its tables and its query engine shares this one shape.
"""

from __future__ import annotations

from datetime import date, datetime

#: a compound address field (Address, MailingAddress, BillingAddress): its parts' values
#: (City, Latitude, ...) by the API's part name
Address = dict[str, "FieldValue"]
#: one stored field value
FieldValue = str | int | float | bool | date | datetime | Address | None
Row = dict[str, FieldValue]


def text(row: Row, name: str) -> str:
    """A text field of `row` (Id, a reference, a name) that must be set; a TypeError naming
    the field when it is missing or not text (a row built wrong, not bad input)."""
    value = row.get(name)
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected text in the row, got {type(value).__name__}")
    return value


def text_or_none(row: Row, name: str) -> str | None:
    """A text field of `row` that may be null (a reference such as WhoId, ConvertedContactId)."""
    value = row.get(name)
    return value if isinstance(value, str) else None


def stamp(row: Row, name: str = "CreatedDate") -> datetime:
    """A datetime field of `row` that is always set (CreatedDate, LastModifiedDate); a
    TypeError naming the field when it is not a datetime."""
    value = row.get(name)
    if not isinstance(value, datetime):
        raise TypeError(f"{name}: expected a datetime in the row, got {type(value).__name__}")
    return value
