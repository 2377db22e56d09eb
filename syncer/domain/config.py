"""Configuration: one YAML file naming connectors, schedules, field mappings and the model.

Everything is validated up front with pydantic and every problem is reported at once, each
as `file: path.inside.file: what is wrong. Fix: what to do` (syncer/domain/config_base.py),
because the person reading it is a revops admin editing YAML, not a Python developer. One
connector's section is syncer/domain/connector_config.py; secrets are only ever references
(syncer/domain/secrets.py), resolved when a connector is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from syncer.domain.config_base import ConfigError, Strict, is_loopback, problems_from
from syncer.domain.connector import ConnectorSettings, Sandbox
from syncer.domain.connector_config import ConnectorConfig
from syncer.domain.secrets import SecretRef, resolve_secret
from syncer.domain.tenant_state import tenant_state_url
from syncer.domain.webhook_config import WebhooksConfig

#: The shipped example: packaged as syncer/examples/ in a wheel (pyproject maps config/
#: there), config/ beside syncer/ in a checkout or an editable install.
_PACKAGED = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_CONFIG = (_PACKAGED if _PACKAGED.is_dir()
                  else Path(__file__).resolve().parents[2] / "config") / "syncer.example.yaml"

SharedPolicy = Literal["hubspot_wins", "salesforce_wins", "latest", "fill_if_blank", "never"]


class SharedField(Strict):
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


class StateConfig(Strict):
    url: str = "sqlite:///.syncer/state.db"


class SandboxConfig(Strict):
    seed: int = 1
    people: int = Field(500, ge=1, le=5_000_000)


class HealthConfig(Strict):
    """The /healthz and /metrics endpoint `syncer run` serves."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65_535)


class AlertsConfig(Strict):
    """Where and when to send alerts. The webhook URL is a secret (Slack's carries a token)."""

    webhook: SecretRef | None = None
    on_failed_run: bool = True
    failed_runs_in_a_row: int = Field(3, ge=1, le=1000)
    dead_letters_above: int | None = Field(None, ge=0)
    timeout_seconds: float = Field(5.0, gt=0, le=60)


class WebConfig(Strict):
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


class AuditConfig(Strict):
    """Retention of the audit log: rows older than `retention_days` move to archive files."""

    retention_days: int | None = Field(None, ge=1, le=36_500)
    archive_path: str = ".syncer/audit-archive"


class WorkerConfig(Strict):
    """Where a tenant's jobs wait in a scale-out deployment (`syncer worker --queue`):
    a big tenant on a queue of its own cannot starve the small ones (docs/operations.md)."""

    queue: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")] = "default"


class SyncerConfig(Strict):
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
    #: the inbound endpoint for hand-raises (docs/webhooks.md)
    webhooks: WebhooksConfig = WebhooksConfig()
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


def parse_config(data: object, path: Path) -> LoadedConfig:
    """Validate an already-parsed YAML document. Raises ConfigError listing every problem."""
    source = str(path)
    if not isinstance(data, Mapping):
        raise ConfigError([f"{source}: (top level): expected a mapping of settings. Fix: start "
                           "from config/syncer.example.yaml"])
    try:
        config = SyncerConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(problems_from(error, source, data)) from None
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


def connector_settings(loaded: LoadedConfig, connector: ConnectorConfig,
                       sandbox: Sandbox | None = None) -> ConnectorSettings:
    """Resolve one connector's settings, reading its secrets.

    `sandbox` (the base_url, credentials, ca_file of a running one) replaces the
    address and secrets when the connector is configured with `sandbox: true`.
    """
    problems: list[str] = []
    credentials: dict[str, str] = {}
    base_url = connector.base_url or ""
    ca_file = connector.ca_file
    if sandbox is not None:
        base_url = sandbox.base_url
        credentials = dict(sandbox.credentials)
        ca_file = sandbox.ca_file
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
        account_writeback_fields=tuple(connector.account_fields.names())
        if connector.account_fields is not None else (),
        ca_file=ca_file, timeout_seconds=connector.timeout_seconds,
        options={"rate_limit_deadline_seconds": connector.rate_limit_deadline_seconds,
                 **({"bulk_query_threshold": connector.bulk_query_threshold}
                    if connector.bulk_query_threshold is not None else {}),
                 **({"create_as": connector.create.create_as} if connector.create else {}),
                 **({"engagements": connector.engagements}
                    if connector.engagements not in (None, False) else {})},
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
