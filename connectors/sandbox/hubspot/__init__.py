"""The HubSpot API emulator."""
