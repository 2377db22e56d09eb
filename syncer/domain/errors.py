"""Write failures grouped by cause, so an admin reads "37 bad picklist value errors on
Industry (salesforce)" rather than a list of error codes from two CRMs.

The CRMs' codes differ; the causes are what an admin can act on, each with the place to
look (`FIXES`). Each connector's errors module owns its CRM's code -> cause table
(`ErrorCodes`) and the wiring registers it in `REGISTRY`, so this module names no CRM.
Every code the connectors and the sandboxes produce maps to a cause there; "other" is
only for codes nobody has seen yet.

A failure is tallied per (connector, cause, field): the field is the CRM field the error
names, bounded to the fields syncer writes on that connector ("other" for any other field,
so metric labels stay few; "" when the error names no field).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

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

#: every cause a failure can be tallied under
ALL_CAUSES: frozenset[str] = frozenset((
    RATE_LIMIT, VALIDATION, BAD_PICKLIST, PERMISSION, LOCKED, NOT_FOUND, AUTH, BAD_OWNER,
    UNAVAILABLE, OTHER))

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


#: a rule for codes whose cause depends on the fields the error names: (upper-case code,
#: fields) -> the cause, or None to use the table
FieldRule = Callable[[str, Sequence[str]], str | None]


@dataclass(frozen=True)
class ErrorCodes:
    """One CRM's error codes, each mapped onto a cause of syncer's (the constants above).

    The table belongs to the CRM's connector (connectors/<crm>/errors.py); the wiring
    registers it (`register`), so this module knows causes, never a CRM's codes."""

    crm: str
    #: upper-case error code -> cause
    causes: Mapping[str, str]
    by_fields: FieldRule | None = None

    def __post_init__(self) -> None:
        unknown = sorted({c for c in self.causes.values() if c not in ALL_CAUSES})
        if unknown:
            raise ValueError(f"{self.crm} error codes map to unknown causes {unknown}; "
                             f"use one of {sorted(ALL_CAUSES)}")
        lower = sorted(code for code in self.causes if code != code.upper())
        if lower:
            raise ValueError(f"{self.crm} error codes must be upper case: {lower}")

    @classmethod
    def grouped(cls, crm: str, codes: Mapping[str, Iterable[str]],
                by_fields: FieldRule | None = None) -> ErrorCodes:
        """The table from cause -> its codes, the way it reads best in a connector."""
        return cls(crm, {code: cause for cause, listed in codes.items() for code in listed},
                     by_fields)


class CauseRegistry:
    """The error codes of the CRMs this process talks to, by cause. Filled by the wiring
    (syncer/cli/runtime.py); a code nobody registered is "other"."""

    def __init__(self) -> None:
        self._tables: dict[str, ErrorCodes] = {}

    def register(self, *tables: ErrorCodes) -> None:
        """Add (or replace) each CRM's table. Two CRMs may share a code only when they
        mean the same cause by it: codes reach the tallies without their CRM's name."""
        for table in tables:
            for other in self._tables.values():
                if other.crm == table.crm:
                    continue
                clash = sorted(code for code, cause in table.causes.items()
                               if other.causes.get(code, cause) != cause)
                if clash:
                    raise ValueError(f"error codes {clash} mean another cause in {table.crm} "
                                     f"than in {other.crm}; give them one cause")
            self._tables[table.crm] = table

    def tables(self) -> tuple[ErrorCodes, ...]:
        return tuple(self._tables.values())

    def codes(self) -> dict[str, str]:
        """Every registered code -> its cause."""
        return {code: cause for table in self._tables.values()
                for code, cause in table.causes.items()}

    def cause_of(self, error_code: str | None, fields: Sequence[str] = ()) -> str:
        """The cause an error code belongs to ("other" for codes nobody registered)."""
        code = (error_code or "").upper()
        for table in self._tables.values():
            ruled = table.by_fields(code, fields) if table.by_fields is not None else None
            if ruled is not None:
                return ruled
        for table in self._tables.values():
            if code in table.causes:
                return table.causes[code]
        return OTHER


#: the process's registry (the wiring fills it; tests may build their own)
REGISTRY = CauseRegistry()


def cause_of(error_code: str | None, fields: Sequence[str] = ()) -> str:
    """The cause of an error code, as the registered CRMs classify it."""
    return REGISTRY.cause_of(error_code, fields)


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
