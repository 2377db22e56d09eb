"""`parse_json` gives exactly what `json.loads` gives (orjson where it can, json where
orjson refuses), so the stored JSON columns and HubSpot's answers read as before."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncer.domain.json_values import parse_json
from syncer.store.compact_json import pack, unpack

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(JSON)
def test_any_json_value_reads_as_json_reads_it(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    parsed = parse_json(text)
    assert parsed == json.loads(text)
    assert parse_json(text.encode()) == parsed
    assert unpack(pack(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("text", [
    "123456789012345678901234567890",  # beyond 64 bits: orjson refuses, json reads it
    '{"n": -98765432109876543210}', "18446744073709551616", '"\\ud800"', "1e400",
    "0.1", "1E-7", '{"a": 1, "a": 2}'])
def test_what_orjson_refuses_reads_as_json_reads_it(text: str) -> None:
    assert repr(parse_json(text)) == repr(json.loads(text))


def test_nan_reads_as_json_reads_it() -> None:
    assert math.isnan(float(str(parse_json("NaN"))))


def test_text_that_is_no_json_is_refused_with_json_s_error() -> None:
    with pytest.raises(ValueError):
        parse_json('{"a": ')
