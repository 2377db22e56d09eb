"""Logs, metrics and progress events: what every floor above may emit."""
