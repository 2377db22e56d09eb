"""Write failures grouped by cause, so an admin reads "37 bad picklist value errors on
Industry (salesforce)" rather than a list of error codes from two CRMs.

The CRMs' codes differ (HubSpot categories and per-property codes, Salesforce statusCodes
and errorCodes); the causes are what an admin can act on, each with the place to look
(`FIXES`). Every code the connectors and the two sandboxes produce maps to a cause here;
"other" is only for codes nobody has seen yet.

A failure is tallied per (connector, cause, field): the field is the CRM field the error
names, bounded to the fields syncer writes on that connector ("other" for any other field,
so metric labels stay few; "" when the error names no field).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

RATE_LIMIT = "rate limit"
VALIDATION = "validation"
PERMISSION = "permission"
BAD_PICKLIST = "bad picklist value"
LOCKED = "locked or converted"
NOT_FOUND = "not found"
AUTH = "auth"
BAD_OWNER = "bad owner"
UNAVAILABLE = "CRM unavailable"
OTHER = "other"

#: a field an error names that syncer does not write (bounded metric labels)
OTHER_FIELD = "other"
#: the error names no field
NO_FIELD = ""

_CODES: dict[str, tuple[str, ...]] = {
    RATE_LIMIT: (
        "RATE_LIMITS", "REQUEST_LIMIT_EXCEEDED"),
    VALIDATION: (
        "VALIDATION_ERROR", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "STRING_TOO_LONG",
        "REQUIRED_FIELD_MISSING", "INVALID_NUMBER", "INVALID_INTEGER", "INVALID_DATE",
        "INVALID_EMAIL",
        "INVALID_EMAIL_ADDRESS", "NUMBER_OUTSIDE_VALID_RANGE", "INVALID_VALUE",
        "INVALID_FIELD", "PROPERTY_DOESNT_EXIST", "JSON_PARSER_ERROR", "INVALID_TYPE",
        "DUPLICATE_VALUE", "DUPLICATES_DETECTED", "CONFLICT", "EXCEEDED_ID_LIMIT",
        "MALFORMED_QUERY", "INVALID_QUERY_FILTER_OPERATOR", "INVALID_QUERY_LOCATOR",
        "METHOD_NOT_ALLOWED", "BAD_REQUEST", "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "MISSING_EMAIL", "OBJECT_ALREADY_EXISTS", "DUPLICATE_DEVELOPER_NAME",
        "FIELD_INTEGRITY_EXCEPTION"),
    BAD_PICKLIST: (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_OPTION"),
    PERMISSION: (
        "INSUFFICIENT_ACCESS_OR_READONLY", "INSUFFICIENT_ACCESS",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "INVALID_FIELD_FOR_INSERT_UPDATE",
        "READ_ONLY_VALUE", "INVALID_TYPE_FOR_OPERATION", "MISSING_SCOPES",
        "API_DISABLED_FOR_ORG",
        "FUNCTIONALITY_NOT_ENABLED"),
    LOCKED: (
        "UNABLE_TO_LOCK_ROW", "LOCKED", "ENTITY_IS_LOCKED", "CANNOT_UPDATE_CONVERTED_LEAD"),
    NOT_FOUND: (
        "ENTITY_IS_DELETED", "OBJECT_NOT_FOUND", "NOT_FOUND", "MALFORMED_ID",
        "INVALID_ID_FIELD", "MISSING_ARGUMENT"),
    AUTH: (
        "INVALID_SESSION_ID", "INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION",
        "INVALID_GRANT"),
    BAD_OWNER: (
        "INVALID_CROSS_REFERENCE_KEY", "INVALID_OWNER_ID", "INACTIVE_OWNER_OR_USER"),
    UNAVAILABLE: (
        "SERVER_UNAVAILABLE", "INTERNAL_ERROR", "UNKNOWN_EXCEPTION", "TIMEOUT",
        "REQUEST_RUNNING_TOO_LONG", "UNCONFIRMED"),
}

#: every cause a failure can be tallied under
ALL_CAUSES: frozenset[str] = frozenset((*_CODES, OTHER))

#: error code (either CRM) -> cause
CAUSES: dict[str, str] = {code: cause for cause, codes in _CODES.items() for code in codes}

#: cause -> where an admin looks to fix it (alerts quote the top cause's)
FIXES: dict[str, str] = {
    RATE_LIMIT: "the CRM refused calls over its API limit; lower the connector's schedule "
                "or daily_api_budget, or raise the account's limit",
    VALIDATION: "a validation rule or field format in the CRM refused the value; see the "
                "messages in `syncer dead-letters`",
    BAD_PICKLIST: "add the value to the field's picklist in the CRM, or change the value "
                  "syncer writes (stage_values in syncer.yaml)",
    PERMISSION: "give syncer's integration user edit access to the field and object in the "
                "CRM (field-level security, private app scopes)",
    LOCKED: "the record is locked (approval, another process) or a converted lead; "
            "syncer retries locks and follows conversions on the next run",
    NOT_FOUND: "the record was deleted or merged in the CRM; the next sync drops it",
    AUTH: "the CRM rejected syncer's credentials; renew them in the secret syncer.yaml "
          "names",
    BAD_OWNER: "the owner is missing or inactive in the CRM; activate the user or change "
               "the routing reps in the model",
    UNAVAILABLE: "the CRM failed or timed out; the next run tries again",
    OTHER: "see the messages in `syncer dead-letters`",
}


def cause_of(error_code: str | None, fields: Sequence[str] = ()) -> str:
    """The cause an error code belongs to ("other" for codes not known here).

    MALFORMED_ID names a malformed record id ("not found") unless it names a reference
    field other than the record's Id: syncer writes one reference, the owner."""
    code = (error_code or "").upper()
    cause = CAUSES.get(code, OTHER)
    if code == "MALFORMED_ID" and any(f.lower() != "id" for f in fields):
        return BAD_OWNER
    return cause


def by_cause(codes: Iterable[str | None]) -> Counter[str]:
    return Counter(cause_of(code) for code in codes)


def bounded_fields(named: Sequence[str], written: Mapping[str, str]) -> list[str]:
    """The fields an error names as tally keys: each as spelled in syncer's config when it
    is one syncer writes (`written`: lower-case name -> configured name), else "other";
    [""] when the error names none. Duplicates collapse, so one error counts once per
    field."""
    if not named:
        return [NO_FIELD]
    out: list[str] = []
    for name in named:
        key = written.get(name.lower(), OTHER_FIELD)
        if key not in out:
            out.append(key)
    return out


FailureGroups = dict[str, dict[str, dict[str, int]]]


def nest(groups: Mapping[tuple[str, str, str], int]) -> FailureGroups:
    """(connector, cause, field) -> count as {connector: {cause: {field: count}}}, the form
    the runs table keeps (JSON)."""
    out: FailureGroups = {}
    for (connector, cause, field_name), count in sorted(groups.items()):
        if count:
            out.setdefault(connector, {}).setdefault(cause, {})[field_name] = count
    return out


def flatten(nested: object) -> Counter[tuple[str, str, str]]:
    """The inverse of `nest`, tolerant of anything else a stored stats value may hold."""
    out: Counter[tuple[str, str, str]] = Counter()
    if not isinstance(nested, Mapping):
        return out
    for connector, causes in nested.items():
        if not isinstance(causes, Mapping):
            continue
        for cause, fields in causes.items():
            if not isinstance(fields, Mapping):
                continue
            for field_name, count in fields.items():
                if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                    out[(str(connector), str(cause), str(field_name))] += count
    return out


def describe(connector: str, cause: str, field_name: str, count: int) -> str:
    """One group in words: "37 bad picklist value errors on Industry (salesforce)"."""
    noun = "error" if count == 1 else "errors"
    where = {NO_FIELD: "", OTHER_FIELD: " on fields syncer does not write"}.get(
        field_name, f" on {field_name}")
    return f"{count} {cause} {noun}{where} ({connector})"


def failure_lines(groups: Mapping[tuple[str, str, str], int], limit: int | None = None
                  ) -> list[str]:
    """The groups in words, largest first (ties by connector, cause, field); with `limit`,
    the rest are summed up in a last "and N more errors" line."""
    ordered = sorted(((k, n) for k, n in groups.items() if n > 0),
                     key=lambda item: (-item[1], item[0]))
    shown = ordered if limit is None else ordered[:limit]
    lines = [describe(*key, count) for key, count in shown]
    rest = sum(count for _, count in ordered[len(shown):])
    if rest:
        lines.append(f"and {rest} more error{'s' if rest != 1 else ''}")
    return lines
