"""The web admin."""
