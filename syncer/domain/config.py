"""Configuration: one YAML file naming connectors, schedules, field mappings and the model.

Everything is validated up front with pydantic and every problem is reported at once, each
as `file: path.inside.file: what is wrong. Fix: what to do`, because the person reading it
is a revops admin editing YAML, not a Python developer. Secrets are only ever references
(an environment variable or a file); their values are resolved when a connector is built
and never enter a message, a log line or the audit log.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syncer.domain.connector import ConnectorSettings
from syncer.domain.failures import BadInput
from syncer.domain.types import Stage

#: The shipped example: packaged as syncer/examples/ in a wheel (pyproject maps config/
#: there), config/ beside syncer/ in a checkout or an editable install.
_PACKAGED = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_CONFIG = (_PACKAGED if _PACKAGED.is_dir()
                  else Path(__file__).resolve().parents[2] / "config") / "syncer.example.yaml"

#: Logical fields syncer writes; each connector maps them to its CRM's field names.
WRITEBACK_FIELDS: tuple[str, ...] = ("stage", "score", "fit_grade", "owner", "reasons",
                                     "owner_reason")


#: Person attributes every connector reads: not names for `person_fields`.
STANDARD_PERSON_FIELDS: frozenset[str] = frozenset({
    "email", "first_name", "last_name", "title", "company", "industry", "employees",
    "country"})
PERSON_FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: seconds a run may wait for one CRM's rate limits (connectors.retry's default too)
RATE_LIMIT_DEADLINE_DEFAULT = 900.0

LogicalField = Literal["stage", "score", "fit_grade", "owner", "reasons", "owner_reason"]
EditPolicy = Literal["keep", "overwrite"]


def _default_edit_policy() -> dict[LogicalField, EditPolicy]:
    """Stage and owner are where sales acts by hand; the rest is syncer's to recompute."""
    return {"stage": "keep", "owner": "keep"}


#: The fix of a problem that names only the setting (most schema problems).
GENERAL_FIX = ("correct each setting named above (config/syncer.example.yaml documents them "
               "all), then check again with `syncer check-config --config FILE`")


class ConfigError(BadInput, ValueError):
    """The configuration cannot be used. `problems` holds one actionable line per issue."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the configuration:"
        lines = [header, *(f"  - {p}" for p in self.problems)]
        if not all("Fix" in p for p in self.problems):  # schema problems say what, not how
            lines.append(f"Fix: {GENERAL_FIX}")
        super().__init__("\n".join(lines))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: the connector kinds a config may name; connectors/__init__.py builds each (a test
#: keeps the two lists equal)
CONNECTOR_KIND_NAMES = ("hubspot", "salesforce")


class SecretRef(_Strict):
    """Where a secret lives: exactly one of an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env: VARIABLE_NAME` or `file: /path/to/secret`")
        return self


class Schedule(_Strict):
    every_minutes: float = Field(15, gt=0, le=24 * 60)


class ScoreFields(_Strict):
    """CRM fields holding one named score (model `scores:`). Leave one out to not write it."""

    score: str | None = None
    fit: str | None = None
    engagement: str | None = None
    grade: str | None = None

    def names(self) -> list[str]:
        return [crm for crm in (self.score, self.fit, self.engagement, self.grade) if crm]


class FieldMap(_Strict):
    """CRM field names holding what syncer decides. Leave one out to not write it."""

    stage: str | None = None
    score: str | None = None
    fit_grade: str | None = None
    owner: str | None = None
    reasons: str | None = None
    owner_reason: str | None = None
    #: named score (as in the model's `scores:`) -> the CRM fields that hold it
    scores: dict[str, ScoreFields] = Field(default_factory=dict)

    def items(self) -> list[tuple[str, str]]:
        return [(name, crm) for name in WRITEBACK_FIELDS
                if (crm := getattr(self, name)) is not None]

    def decided(self) -> list[str]:
        """Every CRM field whose value syncer decides (the fields above and named scores)."""
        return [crm for _, crm in self.items()] + [
            crm for fields in self.scores.values() for crm in fields.names()]


class CreateConfig(_Strict):
    """Create people syncer knows from another CRM in this one, once they pass the gate.

    The gate is deliberately strict by default (MQL or further along): pushing every
    form-filler into Salesforce is what buries sales in junk leads.
    """

    enabled: bool = True
    min_stage: Stage = Stage.MQL
    min_score: int | None = None
    #: fit grades allowed through (empty: any grade)
    fit_grades: list[str] = Field(default_factory=list)
    #: Salesforce: what a new person becomes. account_match: a Contact under the Account
    #: whose name (or website domain) matches the person's company, else a Lead.
    create_as: Literal["account_match", "lead", "contact"] = "account_match"


class ConnectorConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    kind: str
    sandbox: bool = False
    base_url: str | None = None
    ca_file: str | None = None
    credentials: dict[str, SecretRef] = Field(default_factory=dict)
    schedule: Schedule = Schedule()
    fields: FieldMap
    stage_values: dict[Stage, str] = Field(default_factory=dict)
    reasons_max_length: int = Field(255, ge=20, le=65_536)
    #: CRM owner id for a person routed to someone who is not a user in this CRM (e.g. a
    #: Salesforce lead queue); without it the owner field is left alone there.
    fallback_owner_id: str | None = None
    #: per logical field: a value a person set in the CRM after syncer's last write is
    #: kept ("keep") or replaced by syncer's decision ("overwrite").
    manual_edits: dict[LogicalField, EditPolicy] = Field(default_factory=_default_edit_policy)
    #: API requests this connector may spend per UTC day (None: no budget of syncer's own).
    daily_api_budget: int | None = Field(None, ge=1)
    #: how long one run may wait, in all, for this CRM's rate-limit answers (429,
    #: REQUEST_LIMIT_EXCEEDED) before it stops cleanly; the next run goes on from there.
    rate_limit_deadline_seconds: float = RATE_LIMIT_DEADLINE_DEFAULT
    #: create qualified people from the other CRMs here (None: never create)
    create: CreateConfig | None = None
    #: syncer person field -> the CRM field read into Person.properties, merged over the
    #: connector's defaults (HubSpot: source, latest_source, visits, page_views;
    #: Salesforce: source); null drops a default.
    person_fields: dict[str, str | None] = Field(default_factory=dict)

    def kept_crm_fields(self) -> frozenset[str]:
        """CRM field names whose manual edits are respected."""
        mapped = dict(self.fields.items())
        return frozenset(mapped[name] for name, policy in self.manual_edits.items()
                         if policy == "keep" and name in mapped)
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in CONNECTOR_KIND_NAMES:
            known = ", ".join(sorted(CONNECTOR_KIND_NAMES))
            raise ValueError(f"unknown connector kind {value!r}; use one of: {known}")
        return value

    @field_validator("rate_limit_deadline_seconds")
    @classmethod
    def _usable_deadline(cls, value: float) -> float:
        if not 1 <= value <= 86_400:
            raise ValueError(f"{value:g} is not a usable number of seconds. Fix: from 1 to "
                             f"86400 (default {RATE_LIMIT_DEADLINE_DEFAULT:g}: a run waits up "
                             "to 15 minutes in all for this CRM's rate limits, then stops and "
                             "the next run goes on)")
        return value

    @field_validator("person_fields")
    @classmethod
    def _person_field_names(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        """Names a model rule can use (docs/model-language.md), never a standard field's."""
        problems = []
        for name, crm in value.items():
            if not PERSON_FIELD_NAME.fullmatch(name):
                problems.append(f"{name!r} is not a usable field name. Fix: lowercase "
                                "letters, digits and '_', starting with a letter "
                                "(e.g. lead_source)")
            elif name in STANDARD_PERSON_FIELDS:
                problems.append(f"{name!r} is a standard person field syncer always reads. "
                                f"Fix: use another name (e.g. crm_{name})")
            if crm is not None and not crm.strip():
                problems.append(f"{name}: the CRM field name is empty. Fix: name the CRM "
                                "field, or null to drop a default mapping")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _person_fields_not_decided(self) -> ConnectorConfig:
        """A rule reading a field syncer writes would score syncer's own output."""
        decided = {crm.lower() for crm in self.fields.decided()}
        taken = [f"{name}: {crm}" for name, crm in self.person_fields.items()
                 if crm is not None and crm.strip().lower() in decided]
        if taken:
            raise ValueError(f"person_fields {', '.join(taken)}: syncer writes that field "
                             "(`fields`), so a rule would read its own output. Fix: map "
                             "another CRM field")
        return self

    @model_validator(mode="after")
    def _reachable(self) -> ConnectorConfig:
        if not self.sandbox and not self.base_url:
            raise ValueError("set `base_url` to the CRM's API address, or `sandbox: true` to "
                             "use the built-in sandbox")
        if not self.sandbox and not self.credentials:
            raise ValueError("set `credentials` (each as `env:` or `file:`), or `sandbox: true`")
        if self.fields.stage and not self.stage_values:
            raise ValueError("`fields.stage` is set but `stage_values` is empty; map each "
                             "stage (lead, mql, sql, ...) to the CRM's value")
        return self


SharedPolicy = Literal["hubspot_wins", "salesforce_wins", "latest", "fill_if_blank", "never"]


class SharedField(_Strict):
    """A person field both CRMs hold (title, phone, ...) and how a difference is settled.

    hubspot_wins / salesforce_wins: the connector of that kind is the truth and a value
    there is copied to the others (a blank there erases nothing); latest: the side changed
    since the last sync wins, and if both changed, the record modified last; fill_if_blank:
    copied only into records where the field is empty; never: left alone everywhere (a
    field sales owns).
    """

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    policy: SharedPolicy
    #: connector name -> the CRM field holding it there
    fields: dict[str, str] = Field(min_length=2)


class StateConfig(_Strict):
    url: str = "sqlite:///.syncer/state.db"


class SandboxConfig(_Strict):
    seed: int = 1
    people: int = Field(500, ge=1, le=5_000_000)


class HealthConfig(_Strict):
    """The /healthz and /metrics endpoint `syncer run` serves."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65_535)


class AlertsConfig(_Strict):
    """Where and when to send alerts. The webhook URL is a secret (Slack's carries a token)."""

    webhook: SecretRef | None = None
    on_failed_run: bool = True
    failed_runs_in_a_row: int = Field(3, ge=1, le=1000)
    dead_letters_above: int | None = Field(None, ge=0)
    timeout_seconds: float = Field(5.0, gt=0, le=60)


def is_loopback(host: str) -> bool:
    """An address only this machine can reach (where the admin may listen unasked)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebConfig(_Strict):
    """The web admin served by `syncer run` beside its syncs (`syncer web` serves it
    alone). Beyond loopback only with `allow_remote`, and TLS in front (docs/web.md)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8788, ge=0, le=65_535)
    allow_remote: bool = False
    secure_cookies: bool = False
    trusted_proxy: str = "127.0.0.1"

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> WebConfig:
        if not is_loopback(self.host) and not self.allow_remote:
            raise ValueError(f"host {self.host} would serve the admin beyond this machine. "
                             "Fix: keep 127.0.0.1, or set allow_remote: true and put TLS in "
                             "front")
        return self


class AuditConfig(_Strict):
    """Retention of the audit log: rows older than `retention_days` move to archive files."""

    retention_days: int | None = Field(None, ge=1, le=36_500)
    archive_path: str = ".syncer/audit-archive"


class WorkerConfig(_Strict):
    """Where a tenant's jobs wait in a scale-out deployment (`syncer worker --queue`):
    a big tenant on a queue of its own cannot starve the small ones (docs/operations.md)."""

    queue: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")] = "default"


class SyncerConfig(_Strict):
    #: the tenant this file configures (syncer/domain/tenants.py); none for a single-tenant install
    tenant: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] | None = None
    state: StateConfig = StateConfig()
    model: str = "model.example.yaml"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    sandbox: SandboxConfig = SandboxConfig()
    health: HealthConfig = HealthConfig()
    alerts: AlertsConfig = AlertsConfig()
    audit: AuditConfig = AuditConfig()
    worker: WorkerConfig = WorkerConfig()
    web: WebConfig = WebConfig()
    connectors: list[ConnectorConfig] = Field(min_length=1)
    #: person fields kept in step across the CRMs, each with its policy
    shared_fields: list[SharedField] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> SyncerConfig:
        names = [c.name for c in self.connectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"connector names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _shared_fields_consistent(self) -> SyncerConfig:
        """Shared fields name known connectors, never a field syncer decides, and a
        `<kind>_wins` policy needs a connector of that kind among its fields."""
        by_name = {c.name: c for c in self.connectors}
        problems: list[str] = []
        seen: set[str] = set()
        for index, shared in enumerate(self.shared_fields):
            where = f"shared_fields[{index}] (name: {shared.name})"
            if shared.name in seen:
                problems.append(f"{where}: repeated name. Fix: list each field once")
            seen.add(shared.name)
            for connector, crm in shared.fields.items():
                config = by_name.get(connector)
                if config is None:
                    problems.append(f"{where}.fields.{connector}: no connector of that name. "
                                    f"Fix: use one of {', '.join(by_name)}")
                elif crm.lower() in {f.lower() for f in config.fields.decided()}:
                    problems.append(f"{where}.fields.{connector}: {crm} holds what syncer "
                                    "decides (connectors[].fields); it is syncer's, not "
                                    "shared. Fix: remove it from shared_fields")
            if shared.policy.endswith("_wins"):
                kind = shared.policy.removesuffix("_wins")
                kinds = [by_name[c].kind for c in shared.fields if c in by_name]
                if kinds.count(kind) != 1:
                    problems.append(f"{where}.policy: {shared.policy} needs exactly one "
                                    f"{kind} connector in `fields`. Fix: add it or use latest")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class LoadedConfig:
    """A validated config plus the folder it came from (relative paths resolve there)."""

    def __init__(self, config: SyncerConfig, path: Path) -> None:
        self.config = config
        self.path = path
        self.folder = path.parent
        #: set by `syncer.domain.tenants.load_tenant`, else the file's own `tenant:`
        self.tenant: str | None = config.tenant

    @property
    def model_path(self) -> Path:
        return (self.folder / self.config.model).resolve()

    @property
    def state_url(self) -> str:
        """The state URL; a relative SQLite path resolves against the config's folder...
        unless SYNCER_STATE_URL overrides it (containers, tests). A tenant's state lives
        apart within it (a schema or a file of its own: syncer/domain/tenants.py)."""
        from syncer.domain.tenants import tenant_state_url

        url = tenant_state_url(os.environ.get("SYNCER_STATE_URL") or self.config.state.url,
                               self.tenant)
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str((Path.cwd() / url[len(prefix):]).resolve())
        return url

    def connector(self, name: str) -> ConnectorConfig:
        for connector in self.config.connectors:
            if connector.name == name:
                return connector
        raise KeyError(name)


def _format_location(location: Sequence[int | str], data: Any) -> str:
    """Turn pydantic's location into the admin's view: connectors[0] (name: hubspot).fields"""
    parts: list[str] = []
    node: Any = data
    for item in location:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                    label += f" (name: {node['name']})"
            parts.append(label)
        else:
            if parts:
                parts.append(".")
            parts.append(str(item))
            node = node.get(item) if isinstance(node, Mapping) else None
    return "".join(parts) or "(top level)"


_FIXES: dict[str, str] = {
    "extra_forbidden": "remove it or check its spelling against the configuration reference "
                       "in docs/configuration.md",
    "missing": "add it",
    "enum": "use one of the listed values",
    "greater_than": "use a larger number",
    "less_than_equal": "use a smaller number",
    "string_pattern_mismatch": "use lowercase letters, digits, '-' or '_'",
}


def _problems_from(error: ValidationError, source: str, data: Any) -> list[str]:
    problems = []
    for issue in error.errors():
        location = [loc for loc in issue["loc"] if not str(loc).startswith("function-")]
        # pydantic puts model-level validator errors at the model's own location.
        where = _format_location(location, data)
        message = issue["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(issue["type"], "")
        if issue["type"] == "extra_forbidden":
            message = f"unknown setting {location[-1]!r}"
        problems.append(f"{source}: {where}: {message}" + (f". Fix: {fix}" if fix else ""))
    return problems


def parse_config(data: Any, path: Path) -> LoadedConfig:
    """Validate an already-parsed YAML document. Raises ConfigError listing every problem."""
    source = str(path)
    if not isinstance(data, Mapping):
        raise ConfigError([f"{source}: (top level): expected a mapping of settings. Fix: start "
                           "from config/syncer.example.yaml"])
    try:
        config = SyncerConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_problems_from(error, source, data)) from None
    return LoadedConfig(config, path)


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate the YAML config at `path`. Raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found. Fix: pass --config with the path to your "
                           "syncer.yaml (see config/syncer.example.yaml)"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot read it ({error.strerror}). Fix: pass --config "
                           "with a readable file"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a text file (not UTF-8). Fix: pass --config with "
                           "the path to your syncer.yaml"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown place)"
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}: {where}: {problem}. Fix: correct the YAML syntax "
                           "(indentation, quotes, colons)"]) from None
    return parse_config(data, path)


def resolve_secret(ref: SecretRef, where: str) -> str:
    """Read a secret's value. The error names the reference, never a value."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise ConfigError([f"{where}: environment variable {ref.env} is not set. Fix: export "
                               f"{ref.env}=... before starting syncer, or use `file:`"])
        return value
    assert ref.file is not None
    try:
        value = Path(ref.file).read_text(encoding="utf-8").strip()
    except OSError:
        raise ConfigError([f"{where}: secret file {ref.file} cannot be read. Fix: create it "
                           "(readable by syncer) or use `env:`"]) from None
    if not value:
        raise ConfigError([f"{where}: secret file {ref.file} is empty. Fix: put the secret in it"])
    return value


def connector_settings(loaded: LoadedConfig, connector: ConnectorConfig,
                       sandbox_endpoint: Mapping[str, Any] | None = None) -> ConnectorSettings:
    """Resolve one connector's settings, reading its secrets.

    `sandbox_endpoint` (base_url, credentials, ca_file of a running sandbox) replaces the
    address and secrets when the connector is configured with `sandbox: true`.
    """
    problems: list[str] = []
    credentials: dict[str, str] = {}
    base_url = connector.base_url or ""
    ca_file = connector.ca_file
    if sandbox_endpoint is not None:
        base_url = str(sandbox_endpoint["base_url"])
        credentials = dict(sandbox_endpoint["credentials"])
        ca_file = sandbox_endpoint.get("ca_file")
    else:
        index = loaded.config.connectors.index(connector)
        for key, ref in connector.credentials.items():
            where = f"{loaded.path}: connectors[{index}] (name: {connector.name}).credentials.{key}"
            try:
                credentials[key] = resolve_secret(ref, where)
            except ConfigError as error:
                problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return ConnectorSettings(
        name=connector.name, kind=connector.kind, base_url=base_url.rstrip("/"),
        credentials=credentials, writeback_fields=writeback_fields(loaded, connector),
        ca_file=ca_file, timeout_seconds=connector.timeout_seconds,
        options={"rate_limit_deadline_seconds": connector.rate_limit_deadline_seconds,
                 **({"create_as": connector.create.create_as} if connector.create else {})},
        person_fields=dict(connector.person_fields),
    )


def writeback_fields(loaded: LoadedConfig, connector: ConnectorConfig) -> tuple[str, ...]:
    """Every CRM field syncer reads and may write on this connector: the decided fields,
    named scores, and shared fields (each once, in that order)."""
    names = list(connector.fields.decided())
    for shared in loaded.config.shared_fields:
        crm = shared.fields.get(connector.name)
        if crm is not None and shared.policy != "never":
            names.append(crm)
    unique: dict[str, str] = {}
    for name in names:
        unique.setdefault(name.lower(), name)
    return tuple(unique.values())
