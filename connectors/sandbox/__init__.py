"""The API emulators, the synthetic world, fault injection and the SOQL parser. No
production module imports them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.sandbox.world import World
    from syncer.domain.connector import Sandbox

#: kind name -> "module:class" of the kind's API emulator (built from a World and a port).
SANDBOX_KINDS: dict[str, str] = {
    "hubspot": "connectors.sandbox.hubspot.server:HubSpotSandbox",
    "salesforce": "connectors.sandbox.salesforce.server:SalesforceSandbox",
}


def build_sandbox(kind: str, world: World, port: int = 0) -> Sandbox:
    """Instantiate (not start) the emulator of `kind` serving `world` on 127.0.0.1:port."""
    module_name, _, factory = SANDBOX_KINDS[kind].partition(":")
    module = importlib.import_module(module_name)
    sandbox: Sandbox = getattr(module, factory)(world, port=port)
    return sandbox
