"""The `webhooks:` section: where `syncer run` listens for hand-raises and who may send them.

    webhooks:
      enabled: true
      listen: 127.0.0.1:8089          # loopback unless allow_remote (TLS in front)
      max_age_seconds: 300            # a signed timestamp older than this is refused
      sources:
        hubspot:                      # POST /webhooks/hubspot
          kind: hubspot
          connector: hubspot          # whose contacts the events name
          secret: {env: HUBSPOT_CLIENT_SECRET}
        webinar_tool:                 # POST /webhooks/generic, X-Syncer-Source: webinar_tool
          kind: generic
          secret: {env: WEBINAR_WEBHOOK_SECRET}

Secrets are references only (syncer/domain/secrets.py), resolved when the daemon starts.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from syncer.domain.config_base import Strict, is_loopback
from syncer.domain.secrets import SecretRef

SourceKind = Literal["hubspot", "salesforce", "generic"]
#: a source name is also the connector name its records are stored under (generic, import)
SOURCE_NAME = r"^[a-z][a-z0-9_-]{0,39}$"


class WebhookSource(Strict):
    """One sender: its kind (which route and signature), its secret, and for a CRM kind
    the connector whose records its events name."""

    kind: SourceKind
    secret: SecretRef
    connector: str | None = None
    #: Salesforce: the 18-character id of the org allowed to send (OrganizationId)
    organization_id: Annotated[str, Field(pattern=r"^00D[A-Za-z0-9]{12,15}$")] | None = None
    #: the URL the sender signs (HubSpot v3 signs the full URI): set it when a proxy
    #: rewrites scheme, host or path; by default the URL as this server received it
    public_url: str | None = None

    @model_validator(mode="after")
    def _crm_needs_connector(self) -> WebhookSource:
        if self.kind != "generic" and not self.connector:
            raise ValueError(f"a {self.kind} source names the connector its events belong "
                             "to. Fix: add `connector: <a connector name>`")
        if self.kind == "salesforce" and self.organization_id is None:
            raise ValueError("a salesforce source names the org allowed to send. Fix: add "
                             "`organization_id: 00D...` (Setup > Company Information)")
        return self


class WebhooksConfig(Strict):
    """The inbound endpoint `syncer run` serves beside its schedule (docs/webhooks.md)."""

    enabled: bool = False
    listen: str = "127.0.0.1:8089"
    allow_remote: bool = False
    max_age_seconds: int = Field(300, ge=30, le=3600)
    #: how often the processor looks for pending events it was not woken for (a restart,
    #: a run that found the lock held)
    poll_seconds: float = Field(2.0, gt=0, le=300)
    sources: dict[Annotated[str, Field(pattern=SOURCE_NAME)], WebhookSource] = Field(
        default_factory=dict)

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @model_validator(mode="after")
    def _listen_valid(self) -> WebhooksConfig:
        host, colon, port = self.listen.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65_535:
            raise ValueError(f"listen {self.listen!r} is not host:port. Fix: e.g. "
                             "127.0.0.1:8089")
        if not is_loopback(host.strip("[]")) and not self.allow_remote:
            raise ValueError(f"listen {self.listen} would take webhooks from beyond this "
                             "machine. Fix: keep 127.0.0.1, or set allow_remote: true and put "
                             "TLS in front")
        if self.enabled and not self.sources:
            raise ValueError("webhooks are enabled with no sources. Fix: add one under "
                             "`sources:` (docs/webhooks.md)")
        return self
