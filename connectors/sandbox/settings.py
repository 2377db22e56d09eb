"""What the sandbox CRMs let a client do and what goes wrong on purpose: `SandboxLimits`
(HubSpot's per-tier request windows, Salesforce's daily allocation, page and batch sizes)
and `FaultConfig` (5xx answers, 429 bursts, latency, hung requests, dropped connections,
per-record failures, a person editing records during a sync). Plain frozen dataclasses, so
one object configures both sandboxes, from Python, from `syncer sandbox` flags or from a
YAML file (`load_sandbox_file`). faults.py injects what a FaultConfig asks for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

#: HubSpot's published API limits per account tier: (requests per 10 s, requests a day).
HUBSPOT_TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000), "starter": (100, 250_000),
    "professional": (190, 625_000), "enterprise": (190, 1_000_000),
}


class Unset(enum.Enum):
    """Marks a constructor argument left out (None already means "no limit")."""

    UNSET = "unset"


UNSET: Literal[Unset.UNSET] = Unset.UNSET
_Settings = TypeVar("_Settings")


class SandboxConfigError(ValueError):
    """A fault or limit setting the sandbox cannot use; the message names it and the fix."""


def settings_from(cls: type[_Settings], values: Mapping[str, object]) -> _Settings:
    """`cls(**values)`: settings by field name (a YAML section, flags, older keywords), as
    the dataclass's constructor checks them (an unknown name is a TypeError). Values of
    different fields' types pass `**` to a dataclass only untyped (mypy checks each one
    against every field), so this is the one place they lose their types."""
    by_name: dict[str, Any] = dict(values)
    return cls(**by_name)


@dataclass(frozen=True)
class HubSpotLimits:
    """HubSpot's limits as the sandbox enforces them (defaults: an Enterprise portal).

    `requests_per_10s` and `search_per_second` may be None (no limit; the rate-limit
    headers still report the tier's limit); `window_seconds` shortens the rolling window
    for tests. Every 429 carries a Retry-After of whole seconds that is enough (real
    HubSpot does not promise one); `send_retry_after` is kept for older callers and no
    longer changes anything. The daily limit resets at midnight in `time_zone` (the
    account's time zone, an IANA name).
    """

    tier: str = "enterprise"
    requests_per_10s: int | None = 190
    daily: int = 1_000_000
    window_seconds: float = 10.0
    search_per_second: int | None = 5
    list_page_max: int = 100
    search_page_max: int = 200
    search_cap: int = 10_000
    batch_max: int = 100
    send_retry_after: bool = True
    time_zone: str = "UTC"

    @property
    def nominal_per_10s(self) -> int:
        """The tier's published limit per 10 s (what the headers report when the limit
        itself is off)."""
        return self.requests_per_10s or HUBSPOT_TIERS.get(self.tier, (190, 0))[0]

    @classmethod
    def for_tier(cls, tier: str, **overrides: object) -> HubSpotLimits:
        """The limits of a HubSpot tier: free, starter, professional or enterprise."""
        if tier not in HUBSPOT_TIERS:
            raise SandboxConfigError(f"hubspot tier: unknown tier '{tier}'. Fix: use one of "
                                     f"{', '.join(HUBSPOT_TIERS)}")
        per_10s, daily = HUBSPOT_TIERS[tier]
        return settings_from(cls, {"tier": tier, "requests_per_10s": per_10s, "daily": daily,
                                   **overrides})


@dataclass(frozen=True)
class SalesforceLimits:
    """Salesforce's limits as the sandbox enforces them (defaults: an Enterprise org).

    `query_batch` is the default query page (Sforce-Query-Options batchSize may ask for
    200..query_batch); `session_ttl_seconds` None keeps sessions valid until expired by
    hand or by the session_expiry fault.
    """

    daily: int = 100_000
    query_batch: int = 2_000
    collection_max: int = 200
    session_ttl_seconds: float | None = None


@dataclass(frozen=True)
class SandboxLimits:
    """The limits of both sandboxes in one object."""

    hubspot: HubSpotLimits = field(default_factory=HubSpotLimits)
    salesforce: SalesforceLimits = field(default_factory=SalesforceLimits)


@dataclass(frozen=True)
class FaultConfig:
    """What goes wrong on purpose, per request (rates are probabilities in 0..1).

    - error_rate: answer a 5xx, one of 500/502/503/504 (HubSpot: its error body, category
      INTERNAL_ERROR; Salesforce: SERVER_UNAVAILABLE for 503, else UNKNOWN_EXCEPTION; the
      OAuth sign-in can get one too).
    - burst_every / burst_length: of every `burst_every` requests the last `burst_length`
      are refused as over the rate limit (HubSpot 429 TEN_SECONDLY_ROLLING; Salesforce 403
      REQUEST_LIMIT_EXCEEDED "ConcurrentPerOrgLongTxn Limit exceeded."; not the sign-in).
      A request in a burst gets the burst answer whatever else was drawn for it.
    - latency_ms (+ up to latency_jitter_ms): added before every answer.
    - timeout_rate: the request hangs `timeout_seconds` (set it above the client's
      timeout) before it is answered normally: the client has given up by then.
    - drop_rate: the connection is closed without any answer.
    - record_failure_rate: each record of a write fails on its own (HubSpot: an entry of a
      207 answer; Salesforce: a SaveResult error); `record_lock_share` of them are lock
      errors (HubSpot LOCKED, Salesforce UNABLE_TO_LOCK_ROW: retryable), the rest
      validation errors (HubSpot VALIDATION_ERROR, Salesforce
      FIELD_CUSTOM_VALIDATION_EXCEPTION: permanent).
    - editor_rate: before the request is answered, a simulated person edits one record
      in the CRM (changes its owner or stage by hand, bumping its modification time);
      half of the edits hit a record the API wrote recently.
    - session_expiry_rate (Salesforce): the request's session is revoked and answered
      401 INVALID_SESSION_ID, so the client must refresh its token.
    """

    seed: int = 0
    error_rate: float = 0.0
    burst_every: int = 0
    burst_length: int = 0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 35.0
    drop_rate: float = 0.0
    record_failure_rate: float = 0.0
    record_lock_share: float = 0.5
    editor_rate: float = 0.0
    session_expiry_rate: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        for name in ("error_rate", "timeout_rate", "drop_rate", "record_failure_rate",
                     "record_lock_share", "editor_rate", "session_expiry_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}: {value} is not a probability. Fix: use a number "
                                "from 0 to 1")
        for name in ("latency_ms", "latency_jitter_ms", "timeout_seconds"):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must not be negative")
        if self.burst_every < 0 or self.burst_length < 0 or (
                self.burst_length and self.burst_length > self.burst_every):
            problems.append(f"burst: {self.burst_every}:{self.burst_length} is not "
                            "EVERY:LENGTH with 0 <= LENGTH <= EVERY. Fix: e.g. 50:5")
        if self.error_rate + self.timeout_rate + self.drop_rate > 1.0:
            problems.append("error_rate + timeout_rate + drop_rate exceeds 1")
        if problems:
            raise SandboxConfigError("; ".join(problems))

    @property
    def enabled(self) -> bool:
        """True when any fault can happen (the default config injects nothing)."""
        return any((self.error_rate, self.burst_length, self.latency_ms,
                    self.latency_jitter_ms, self.timeout_rate, self.drop_rate,
                    self.record_failure_rate, self.editor_rate, self.session_expiry_rate))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], source: str = "faults") -> FaultConfig:
        """Build from a mapping of field names (a YAML file's `faults:` section); unknown
        keys and bad values are errors that name the key."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SandboxConfigError(f"{source}: unknown fault setting(s) {unknown}. Fix: use "
                                     f"{', '.join(known)}")
        values: dict[str, float] = {}
        for key, raw in data.items():
            kind = int if known[key].type in ("int", int) else float
            try:
                if not isinstance(raw, int | float | str):  # None, a list, a mapping
                    raise TypeError(key)
                values[key] = kind(raw)
            except (TypeError, ValueError):
                raise SandboxConfigError(f"{source}: {key}: '{raw}' is not a number. Fix: "
                                         f"give a {kind.__name__}") from None
        try:
            return settings_from(cls, values)
        except SandboxConfigError as error:
            raise SandboxConfigError(f"{source}: {error}") from None


def parse_burst(text: str) -> tuple[int, int]:
    """`EVERY:LENGTH` (e.g. `50:5`) as two integers."""
    every, sep, length = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(every), int(length)
    except ValueError:
        raise SandboxConfigError(f"--fault-429-burst: '{text}' is not EVERY:LENGTH. Fix: "
                                 "e.g. 50:5 (the last 5 of every 50 requests get a 429)") \
            from None


def load_sandbox_file(path: Path) -> tuple[FaultConfig, SandboxLimits]:
    """A YAML file with an optional `faults:` mapping (FaultConfig fields) and optional
    `limits: {hubspot: {...}, salesforce: {...}}` (HubSpotLimits / SalesforceLimits
    fields; `hubspot.tier` picks the tier's presets)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SandboxConfigError(f"{path}: cannot read it ({type(error).__name__}). Fix: "
                                 "give a readable YAML file") from None
    if not isinstance(data, Mapping) or set(data) - {"faults", "limits"}:
        raise SandboxConfigError(f"{path}: expected a mapping with `faults:` and/or "
                                 "`limits:`. Fix: see docs/sandbox.md")
    faults = FaultConfig.from_mapping(data.get("faults") or {}, f"{path}: faults")
    return faults, _limits_from(data.get("limits") or {}, f"{path}: limits")


def _limits_from(data: Mapping[str, object], source: str) -> SandboxLimits:
    if set(data) - {"hubspot", "salesforce"}:
        raise SandboxConfigError(f"{source}: expected `hubspot:` and/or `salesforce:`")
    hubspot_data, salesforce_data = (_section(data, name, source)
                                     for name in ("hubspot", "salesforce"))
    tier = str(hubspot_data.pop("tier", "enterprise"))
    try:
        hubspot = HubSpotLimits.for_tier(tier, **hubspot_data)
        salesforce = settings_from(SalesforceLimits, salesforce_data)
    except TypeError as error:
        raise SandboxConfigError(f"{source}: {error}. Fix: use the field names in "
                                 "docs/sandbox.md") from None
    return SandboxLimits(hubspot, salesforce)


def _section(data: Mapping[str, object], name: str, source: str) -> dict[str, object]:
    """One CRM's limits (`limits: {hubspot: {...}}`) as a mapping of setting names."""
    section = data.get(name) or {}
    if not isinstance(section, Mapping):
        raise SandboxConfigError(f"{source}: {name}: expected a mapping of limit names. Fix: "
                                 "see docs/sandbox.md")
    return {str(key): value for key, value in section.items()}
