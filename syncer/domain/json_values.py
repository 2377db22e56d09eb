"""Types for JSON as it crosses syncer's edges (CRM answers, stored JSON columns, config).

A decoded JSON document is one of these, recursively; code that reads one narrows it
(`isinstance`, or the helpers below) instead of treating it as `Any`, so a CRM answer of an
unexpected shape fails where it is read, with the field named, not three calls later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: any decoded JSON value
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
#: a decoded JSON object (what `json.loads` gives for `{...}`)
JSONObject = dict[str, JSONValue]
#: a JSON object as a function reads it (accepts any mapping with JSON values)
JSONMapping = Mapping[str, JSONValue]


def as_object(value: object, what: str = "value") -> JSONObject:
    """`value` as a JSON object, or a TypeError naming `what` when it is not one."""
    if not isinstance(value, dict):
        raise TypeError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def as_list(value: object, what: str = "value") -> list[JSONValue]:
    """`value` as a JSON array, or a TypeError naming `what` when it is not one."""
    if not isinstance(value, list):
        raise TypeError(f"{what}: expected a JSON array, got {type(value).__name__}")
    return value


def objects(value: object, what: str = "value") -> list[JSONObject]:
    """`value` as a JSON array of objects (a page of records), each checked."""
    return [as_object(item, f"{what}[{index}]") for index, item in enumerate(as_list(value, what))]


def text_or_none(mapping: JSONMapping | Mapping[str, object], key: str) -> str | None:
    """The value at `key` as text (numbers and booleans as JSON would print them), None
    when missing, null or empty."""
    value = mapping.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def strings(value: Sequence[object]) -> list[str]:
    """Each item as text (ids may come as numbers)."""
    return [item if isinstance(item, str) else str(item) for item in value]
