"""Connectors: one folder per CRM or marketing tool.

Each folder owns how to call its system and how its records map to the domain; the API
emulators live in connectors/sandbox/, which no production module imports.
`CONNECTOR_KINDS` is the only place that lists them by name, so the pipeline never has to.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncer.domain.connector import Connector, ConnectorSettings

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
