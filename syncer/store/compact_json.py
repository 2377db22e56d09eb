"""A JSON column kept compressed on SQLite (schema 16): records, activities, decisions.

The state's non-audit tables are mostly JSON: a person's named scores with their ledgers
(about 3.9 KB a person as text), each record's fields and CRM values, each activity's
attributes. As text, every row repeats the same keys and rule details. On SQLite
`PackedJSON` keeps the JSON as bytes: a format byte, then either the UTF-8 text as is (tiny
values, where compression would not pay) or zlib of that text with a preset dictionary of
the keys and words those rows share (small rows compress too). The code reads and writes
the same Python values as with `JSON`; only the bytes on disk differ.

PostgreSQL keeps its `JSON` type (its TOAST compresses large values already), so a
PostgreSQL state needs no conversion.

Reading also accepts a value still in the text form (a row an older syncer wrote), so a
state half way through its migration, or a test that writes text, reads the same.

The dictionary and the format bytes are part of the stored format: never change them; a
new dictionary needs a new format byte (older rows keep theirs).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson
from sqlalchemy import JSON, LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from syncer.domain.json_values import JSONValue, parse_json

#: the value is the UTF-8 JSON text itself
RAW = 0x00
#: zlib (raw deflate, no header) of the UTF-8 JSON text with DICTIONARY_1 preset
DEFLATE_1 = 0x01

#: Words the JSON of records, activities and decisions share (later bytes are cheaper to
#: refer to, so the commonest come last). Frozen: see the module docstring.
DICTIONARY_1 = (
    # activities' attributes
    '{"url":"https://www.","email":"","duration":,"form":"","campaign":"","asset":"'
    '"subject":"","form_id":"","utm_source":"","utm_medium":"","utm_campaign":"'
    # records: CRM values (syncer's own fields on both CRMs) and person fields
    '{"Status":"Open","Syncer_Stage__c":"MQL","Syncer_Score__c":"","Syncer_Fit_Grade__c":"'
    '","OwnerId":"005","Syncer_Reasons__c":"","Syncer_Owner_Reason__c":"'
    '","Syncer_Lead_Routing_Score__c":"","Syncer_Lead_Routing_Fit__c":"'
    '","Syncer_Lead_Routing_Engagement__c":"","Syncer_Lead_Routing_Grade__c":"'
    '","Syncer_Fit__c":"","Syncer_Engagement__c":"'
    '{"lifecyclestage":"marketingqualifiedlead","hs_lead_status":"","syncer_stage":"'
    '","syncer_score":"","syncer_fit_grade":"","hubspot_owner_id":"","syncer_reasons":"'
    'MQL SQL SAL (fit A): score >= 25, fit >= 0, engagement >= 3; title +'
    '","syncer_owner_reason":"owner was set in the CRM; kept","account match (domain '
    'round robin","syncer_lead_routing_score":"","syncer_lead_routing_fit":"'
    '","syncer_lead_routing_engagement":"","syncer_lead_routing_grade":"'
    '","syncer_fit":"","syncer_engagement":"'
    '{"email":"","first_name":"","last_name":"","title":"","company":"","industry":"'
    '","employees":,"country":"","properties":{"source":"","latest_source":"'
    '","visits":.0,"page_views":.0,"opportunity_at":null,"customer_at":null}}'
    # decisions: reasons and named scores with their ledger lines
    '[{"rule_id":"","points":.0,"detail":"","evidence_at":null},'
    '[{"name":"primary","fit":.0,"engagement":.0,"total":,"grade":"","ledger":[["'
    'fit + engagement rounded to ","rounding",-0.'
    'engagement.no_engagement_90_days","engagement.email_click","engagement.email_open'
    'engagement.pricing_page","engagement.content_download","engagement.form_fill'
    'engagement.webinar_registration","engagement.webinar_attendance","page_view /blog/'
    'fit.enterprise_size","fit.vp_title","fit.head_or_director_title","fit.free_mail_domain'
    'fit.manager_title","fit.very_small_company","engagement.website_visits"'
    'fit.target_industry","industry \'\' is listed","fit.midmarket_size","employees  in 50..499'
    'fit.lead_source","lead source \'\'","fit.target_country","country \'\' is listed'
    'fit.gtm_role","title \'Marketing Manager\' contains \'marketing\'",null,null,1.0],["'
    '"engagement.page_view","hubspot:","salesforce:00T","+00:00",'
)
_LEVEL = 6
_WBITS = -15  # raw deflate: the format byte says what it is, no zlib header needed
_SMALL = 8    # shorter JSON text is kept raw (and any text deflate would not shorten)
_ZDICT = DICTIONARY_1.encode()
#: a compressor with the dictionary loaded, copied for each value: loading the dictionary
#: (hashing its 2.5 KB) cost more than a copy of the prepared state. Its window is 8 KB
#: (the dictionary and a typical row fit; the copy is a quarter of a 32 KB window's);
#: raw deflate with a smaller window is read by the same 32 KB inflater (_WBITS)
_PACKER = zlib.compressobj(_LEVEL, zlib.DEFLATED, -13, 7, zdict=_ZDICT)


def json_bytes(value: object) -> bytes:
    """Compact UTF-8 JSON text of a value, as `json.dumps(value, separators=(",", ":"),
    ensure_ascii=False)` gives it, by orjson (an order of magnitude faster: every record,
    activity and decision a sync stores is encoded here). The standard library takes what
    orjson refuses (an integer beyond 64 bits), so any value json takes is stored (a NaN,
    which is no JSON, is stored as null)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def pack(value: object) -> bytes:
    """The stored bytes of a JSON value (compact separators, UTF-8)."""
    text = json_bytes(value)
    if len(text) < _SMALL:
        return bytes((RAW,)) + text
    packer = _PACKER.copy()
    packed = packer.compress(text) + packer.flush()
    if len(packed) >= len(text):
        return bytes((RAW,)) + text
    return bytes((DEFLATE_1,)) + packed


def unpack(stored: bytes | str) -> JSONValue:
    """The JSON value of stored bytes (or of JSON text an older syncer wrote)."""
    return parse_json(_json_text(stored))  # json's value, for any integer too


def _json_text(stored: bytes | str) -> bytes | str:
    """The JSON text inside a stored value, unpacked by its format byte."""
    if isinstance(stored, str):
        return stored
    kind, body = stored[0], stored[1:]
    if kind == RAW:
        return body
    if kind == DEFLATE_1:
        unpacker = zlib.decompressobj(_WBITS, zdict=_ZDICT)
        return unpacker.decompress(body) + unpacker.flush()
    if kind in b"[{\"-0123456789tfn":  # JSON text stored as a blob
        return stored
    raise ValueError(f"a packed JSON value starts with unknown format byte {kind:#04x}: "
                     f"written by a newer syncer? Upgrade syncer to read this state")


def pack_text(text: str) -> bytes:
    """The stored bytes of a text kept as it is (the audit's reasons lists and long field
    values): a format byte, then the UTF-8 bytes deflated with DICTIONARY_1 (or as they
    are, when deflate would not shorten them). Unlike `pack` the text is not re-encoded,
    so `unpack_text` gives back exactly the text given."""
    raw = text.encode()
    if len(raw) < _SMALL:
        return bytes((RAW,)) + raw
    packer = _PACKER.copy()
    packed = packer.compress(raw) + packer.flush()
    if len(packed) >= len(raw):
        return bytes((RAW,)) + raw
    return bytes((DEFLATE_1,)) + packed


def unpack_text(stored: bytes | str) -> str:
    """The text of stored bytes (or the text itself, as an older syncer stored it)."""
    if isinstance(stored, str):
        return stored
    kind, body = stored[0], stored[1:]
    if kind == RAW:
        return body.decode()
    if kind == DEFLATE_1:
        unpacker = zlib.decompressobj(_WBITS, zdict=_ZDICT)
        return (unpacker.decompress(body) + unpacker.flush()).decode()
    raise ValueError(f"a packed text starts with unknown format byte {kind:#04x}: written by "
                     f"a newer syncer? Upgrade syncer to read this state")


class PackedText(TypeDecorator[str]):
    """Text to the code; on SQLite a format byte and deflated UTF-8 (see pack_text).
    PostgreSQL keeps TEXT (TOAST compresses long values)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[bytes] | TypeEngine[str]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(LargeBinary())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | bytes | None:
        if value is None or dialect.name != "sqlite":
            return value
        return pack_text(value)

    def process_result_value(self, value: str | bytes | None, dialect: Dialect
                             ) -> str | None:
        if value is None:
            return None
        return unpack_text(value)


class PackedJSON(TypeDecorator[JSONValue]):
    """JSON to the code; on SQLite a format byte and deflated UTF-8 JSON (see pack)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(LargeBinary())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: JSONValue, dialect: Dialect) -> JSONValue | bytes:
        if value is None or dialect.name != "sqlite":
            return value
        return pack(value)

    def process_result_value(self, value: JSONValue | bytes, dialect: Dialect) -> JSONValue:
        if dialect.name == "sqlite" and isinstance(value, bytes | str):
            return unpack(value)
        assert not isinstance(value, bytes), "only SQLite hands back packed bytes"
        return value
