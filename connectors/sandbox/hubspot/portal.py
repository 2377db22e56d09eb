"""What the HubSpot sandbox's control operations (webhooks, form fills, logged
engagements) use of the sandbox, as a Protocol.

HubSpotSandbox (server.py) registers those operations, so the modules that define them
(connectors/sandbox/webhooks.py, hubspot/engagement_controls.py) name the sandbox by this
protocol instead of importing the server back: no two sandbox modules import each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from connectors.sandbox.hubspot.api import HubSpotApi
from connectors.sandbox.hubspot.state import PortalState


class Portal(Protocol):
    """A running HubSpot sandbox: its contacts, its API's stores, its clock."""

    @property
    def state(self) -> PortalState: ...

    @property
    def api(self) -> HubSpotApi: ...

    def now(self) -> datetime: ...
