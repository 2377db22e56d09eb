"""Secrets in the configuration are only ever references (an environment variable or a
file). Their values are read when a connector or the alert webhook is built, and never enter
a message, a log line or the audit log: an error names the reference, never a value.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import model_validator

from syncer.domain.config_base import ConfigError, Strict


class SecretRef(Strict):
    """Where a secret lives: exactly one of an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env: VARIABLE_NAME` or `file: /path/to/secret`")
        return self


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
