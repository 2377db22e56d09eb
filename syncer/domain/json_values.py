"""Types for JSON as it crosses syncer's edges (CRM answers, stored JSON columns, config).

A decoded JSON document is one of these, recursively; code that reads one narrows it
(`isinstance`, or the helpers below) instead of treating it as `Any`, so a CRM answer of an
unexpected shape fails where it is read, with the field named, not three calls later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import orjson

#: any decoded JSON value
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
#: a decoded JSON object (what `json.loads` gives for `{...}`)
JSONObject = dict[str, JSONValue]
#: a JSON object as a function reads it (accepts any mapping with JSON values)
JSONMapping = Mapping[str, JSONValue]


#: 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads as a float
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def parse_json(text: bytes | str) -> JSONValue:
    """The value of JSON text, as `json.loads` gives it, by orjson where it can (several
    times faster: every stored record, activity and decision a sync reads, and every
    HubSpot answer, is decoded here). Text with 19 digits in a row (an integer orjson
    would turn into a float, or a long id in a string) and what orjson refuses (NaN, a
    lone surrogate, very deep nesting) go to json, so the value is always json's; text
    neither takes raises json's ValueError."""
    long_digits = _LONG_DIGITS_BYTES.search(text) if isinstance(text, bytes) \
        else _LONG_DIGITS.search(text)
    if long_digits is None:
        try:
            parsed: JSONValue = orjson.loads(text)
            return parsed
        except orjson.JSONDecodeError:
            pass
    parsed = json.loads(text)
    return parsed


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
