"""Connectors: one folder per CRM or marketing tool.

Each folder owns how to call its system, how its records map to the domain, and an
emulator of its API. `CONNECTOR_KINDS` is the only place that lists them by name, so the
pipeline never has to.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import Connector, ConnectorSettings, Sandbox
    from connectors.sandbox_world import World

#: kind name in the config -> "module:factory" building a Connector from its settings.
CONNECTOR_KINDS: dict[str, str] = {
    "hubspot": "connectors.hubspot.connector:HubSpotConnector",
    "salesforce": "connectors.salesforce.connector:SalesforceConnector",
}


def build_connector(settings: ConnectorSettings) -> Connector:
    """Instantiate the connector for `settings.kind` (validated by the config beforehand)."""
    module_name, _, factory = CONNECTOR_KINDS[settings.kind].partition(":")
    module = importlib.import_module(module_name)
    connector: Connector = getattr(module, factory)(settings)
    return connector


#: kind name -> "module:class" of the kind's API emulator (built from a World and a port).
SANDBOX_KINDS: dict[str, str] = {
    "hubspot": "connectors.hubspot.sandbox:HubSpotSandbox",
    "salesforce": "connectors.salesforce.sandbox:SalesforceSandbox",
}


def build_sandbox(kind: str, world: World, port: int = 0) -> Sandbox:
    """Instantiate (not start) the emulator of `kind` serving `world` on 127.0.0.1:port."""
    module_name, _, factory = SANDBOX_KINDS[kind].partition(":")
    module = importlib.import_module(module_name)
    sandbox: Sandbox = getattr(module, factory)(world, port=port)
    return sandbox
