"""A model file's problems in the words of the admin who edits it: each with its line, its
path, the rule or named score it is in, what is wrong and how to fix it (docs/model-language.md).
Every problem of a file is reported at once, in one ModelError (syncer/qualify/model.py).
"""

from __future__ import annotations

import difflib
import typing

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

EXAMPLE = "config/model.example.yaml"
#: Lists of rules whose entries an error message names by `id`.
RULE_LISTS = ("rules", "recycle", "disqualify")
#: where in the document an error is: keys and list indexes, outermost first
Location = tuple[int | str, ...]


def yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the YAML broke, what the parser expected, and where the open construct began."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context:
        problem += f" {context}"
        if context_mark is not None and (mark is None or context_mark.line != mark.line):
            problem += f" started at line {context_mark.line + 1}"
    return (f"{where}not valid YAML ({problem}). Fix: check the indentation (spaces, not "
            "tabs), quotes and brackets around that line")


def problem(err: ErrorDetails, data: object, node: yaml.Node | None,
            root: type[BaseModel]) -> str:
    """One validation error as the admin reads it: line, path, the rule or score it is in,
    what is wrong and the fix. `root`: the schema the document was validated against."""
    loc = tuple(err["loc"])
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    line = _line(node, loc)
    where = (f"line {line}, " if line else "") + (path or "(top level)")
    score = _score_name(data, loc)
    if score:
        where += f" (score '{score}')"
    rule_id = _rule_id(data, loc)
    if rule_id:
        where += f" (rule '{rule_id}')"
    message = str(err["msg"]).removeprefix("Value error, ")
    if "Fix:" not in message:
        message = f"{_what(err)}. Fix: {_fix(err, loc, root)}"
    return f"{where}: {message}"


def _what(err: ErrorDetails) -> str:
    kind, got = err["type"], err.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, got {shown}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping (key: value lines), got {shown}"
    if kind == "too_short":
        return f"must list at least {err.get('ctx', {}).get('min_length', 1)} item(s)"
    bound = _bound(err)
    if bound:
        return f"must be {bound}, got {shown}"
    return f"{err['msg'].lower().replace('tuple', 'list')}, got {shown}"


def _fix(err: ErrorDetails, loc: Location, root: type[BaseModel]) -> str:
    kind = err["type"]
    key = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "missing":
        return f"add `{key}:` here (see {EXAMPLE})"
    if kind == "too_short":
        return f"add an entry (see {EXAMPLE})"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, loc[:-1])
        guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
        hint = f"did you mean `{guess[0]}`? " if guess else ""
        return f"{hint}remove it or use one of: {', '.join(allowed)}"
    if kind in ("float_type", "int_type", "int_from_float", "finite_number"):
        return "write a plain number without quotes, e.g. 15"
    if kind == "bool_type":
        return "write true or false"
    if kind in ("tuple_type", "list_type"):
        return "write a YAML list: [a, b] or one '- item' per line"
    if kind == "string_pattern_mismatch" and key == "email":
        return "write a full email address such as dana.whitfield@example.com"
    if kind == "string_pattern_mismatch":
        return ("use letters, digits, '_' or '-' (and '.' in a name), starting with a "
                "letter or digit")
    if kind == "literal_error":
        return "use one of the values listed"
    if _bound(err):
        return f"use a number {_bound(err)}"
    return f"compare with {EXAMPLE}"


def _bound(err: ErrorDetails) -> str:
    """">= 1" for a greater_than_equal error with ge=1, and so on; "" for other errors."""
    ctx = err.get("ctx") or {}
    for key, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx and err["type"] in ("greater_than", "greater_than_equal", "less_than",
                                          "less_than_equal"):
            return f"{symbol} {ctx[key]}"
    return ""


def _allowed_keys(root: type[BaseModel], loc: Location) -> list[str]:
    """The keys a mapping at `loc` accepts, found by walking the schema classes."""
    cls: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = next((f for n, f in cls.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        cls = next((a for a in _flatten(field.annotation)
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if cls is None:
            return []
    return [f.alias or n for n, f in cls.model_fields.items()] if cls is not None else []


def _flatten(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    return [annotation] if not args else [a for arg in args for a in _flatten(arg)]


def _at(data: object, path: Location) -> object:
    """The value at `path` in decoded YAML, None where the path leads nowhere."""
    item = data
    for part in path:
        if isinstance(item, dict):
            if part not in item:
                return None
            item = item[part]
        elif isinstance(item, list) and isinstance(part, int) and -len(item) <= part < len(item):
            item = item[part]
        else:
            return None
    return item


def _rule_id(data: object, loc: Location) -> str | None:
    """The `id` of the rule an error is in, so the admin can find it by name."""
    for depth in range(len(loc) - 1, 0, -1):
        if loc[depth - 1] in RULE_LISTS and isinstance(loc[depth], int):
            item = _at(data, loc[:depth + 1])
            rule_id = item.get("id") if isinstance(item, dict) else None
            return str(rule_id) if rule_id is not None else None
    return None


def _score_name(data: object, loc: Location) -> str | None:
    """The `name` of the named score an error is in (`scores[2]...`)."""
    if len(loc) < 2 or loc[0] != "scores" or not isinstance(loc[1], int):
        return None
    scores = data.get("scores") if isinstance(data, dict) else None
    if not isinstance(scores, list) or not 0 <= loc[1] < len(scores):
        return None
    item = scores[loc[1]]
    name = item.get("name") if isinstance(item, dict) else None
    return str(name) if name is not None else None


def _line(node: yaml.Node | None, loc: Location) -> int | None:
    """1-based line of the deepest YAML node on `loc` (for a missing key: its parent)."""
    if node is None:
        return None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1
