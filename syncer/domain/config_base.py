"""What every part of the configuration shares: the strict section base, the error every
problem is reported through, and how pydantic's errors become an admin's lines.

Each problem reads `file: path.inside.file: what is wrong. Fix: what to do`, because the
person reading it is a revops admin editing YAML, not a Python developer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from syncer.domain.failures import BadInput

#: The fix of a problem that names only the setting (most schema problems).
GENERAL_FIX = ("correct each setting named above (config/syncer.example.yaml documents them "
               "all), then check again with `syncer check-config --config FILE`")


class ConfigError(BadInput, ValueError):
    """The configuration cannot be used. `problems` holds one actionable line per issue."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the configuration:"
        lines = [header, *(f"  - {p}" for p in self.problems)]
        if not all("Fix" in p for p in self.problems):  # schema problems say what, not how
            lines.append(f"Fix: {GENERAL_FIX}")
        super().__init__("\n".join(lines))


class Strict(BaseModel):
    """A config section: unknown settings are errors, values never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _format_location(location: Sequence[int | str], data: object) -> str:
    """Turn pydantic's location into the admin's view: connectors[0] (name: hubspot).fields"""
    parts: list[str] = []
    node: object = data
    for item in location:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node):
                node = node[item]
                if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                    label += f" (name: {node['name']})"
            parts.append(label)
        else:
            if parts:
                parts.append(".")
            parts.append(str(item))
            node = node.get(item) if isinstance(node, Mapping) else None
    return "".join(parts) or "(top level)"


_FIXES: dict[str, str] = {
    "extra_forbidden": "remove it or check its spelling against the configuration reference "
                       "in docs/configuration.md",
    "missing": "add it",
    "enum": "use one of the listed values",
    "greater_than": "use a larger number",
    "less_than_equal": "use a smaller number",
    "string_pattern_mismatch": "use lowercase letters, digits, '-' or '_'",
}


def problems_from(error: ValidationError, source: str, data: object) -> list[str]:
    problems = []
    for issue in error.errors():
        location = [loc for loc in issue["loc"] if not str(loc).startswith("function-")]
        # pydantic puts model-level validator errors at the model's own location.
        where = _format_location(location, data)
        message = issue["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(issue["type"], "")
        if issue["type"] == "extra_forbidden":
            message = f"unknown setting {location[-1]!r}"
        problems.append(f"{source}: {where}: {message}" + (f". Fix: {fix}" if fix else ""))
    return problems


def is_loopback(host: str) -> bool:
    """An address only this machine can reach (where the admin may listen unasked)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
