"""`syncer model diff` and `show`: look at a model before publishing it; `publish`,
`rollback` and `history`: which model syncs use (the rules are in syncer/run/publication.py)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from syncer.cli.commands import learn
from syncer.cli.commands.common import add_config_option, load_args_config, open_writable

if TYPE_CHECKING:
    from syncer.qualify import Model, ModelError
    from syncer.qualify.model import EngagementRule, FitRule


def _at(value: str) -> datetime:
    """--at: an ISO 8601 instant; without an offset it is taken as UTC."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time, e.g. 2026-11-20T12:00:00Z") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def _positive(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _load_both(old_path: str, new_path: str) -> tuple[Model, Model] | None:
    """Both models, or None after printing every problem of both files."""
    from syncer.qualify import ModelError, load_model

    models: list[Model] = []
    errors: list[ModelError] = []
    for path in (old_path, new_path):
        try:
            models.append(load_model(path))
        except ModelError as problem:
            errors.append(problem)
    for found in errors:
        print(str(found), file=sys.stderr)
    return None if errors else (models[0], models[1])


def cmd_model_diff(args: argparse.Namespace) -> int:
    from syncer.run.preview import diff_models, format_diff, open_read_only

    models = _load_both(args.old, args.new)
    if models is None:
        return 2
    loaded = load_args_config(args)
    url = args.state or loaded.state_url
    now = args.at or datetime.now(timezone.utc)
    store = open_read_only(url)  # PreviewError: one line, exit 2 (syncer/cli/main.py)
    try:
        result = diff_models(store, loaded, models[0], models[1], now, args.sample)
    finally:
        store.close()
    print("\n".join(format_diff(result)))
    return 0


def evidence_lines(model: Model) -> list[str]:
    """What `syncer model calibrate` wrote behind each rule: people and conversion per
    table entry or bin, and where the model was learned."""
    lines: list[str] = []
    if model.calibration:
        learned = ", ".join(f"{k} {v}" for k, v in model.calibration.items())
        lines.append(f"  calibration: {learned}")
    for section, rules in (("fit", model.fit.rules), ("engagement", model.engagement.rules)):
        for rule in rules:
            if not rule.evidence:
                continue
            lines.append(f"  {section}.{rule.id} ({rule.field}):")
            for label, seen in rule.evidence.items():
                rate = seen.converted / seen.people if seen.people else 0.0
                points = _points_of(rule, label)
                lines.append(f"    {label:<28} {points:>6}  {seen.people:>7,} people, "
                             f"{rate:6.1%} converted")
    return lines


def _points_of(rule: FitRule | EngagementRule, label: str) -> str:
    if rule.table is not None:
        for key, points in rule.table.items():
            if key.strip().lower() == label.strip().lower():
                return f"{points:+g}"
    return ""


def cmd_model_show(args: argparse.Namespace) -> int:
    from syncer.qualify import load_model
    from syncer.qualify.overview import describe

    path = args.path or str(load_args_config(args).model_path)
    model = load_model(path)
    print("\n".join([*describe(model), *evidence_lines(model)]))
    return 0


def _when(at: datetime) -> str:
    return f"{at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


def cmd_model_publish(args: argparse.Namespace) -> int:
    from syncer.observe.logs import configure_logging
    from syncer.run.publication import publish

    loaded = load_args_config(args)
    configure_logging(loaded.config.log_level, sys.stderr)
    store = open_writable(args.state or loaded.state_url)
    try:
        row, before = publish(store, loaded, datetime.now(timezone.utc), args.note)
    finally:
        store.close()
    name = loaded.model_path.name
    if row is None:  # the same version: no new row, so rollbacks still go where they did
        assert before is not None
        pinned = (f" (rollback #{before.id} still pins it: publishing a changed {name} "
                  "ends the pin)" if before.pins else "")
        print(f"{before.version} ({name}) is already the active model{pinned}; nothing to "
              "publish")
    else:
        was = f" (was {before.version})" if before is not None else " (the first)"
        print(f"published {row.version}{was} from {name}; the next sync re-decides "
              "everyone with it")
    return 0


def cmd_model_rollback(args: argparse.Namespace) -> int:
    from syncer.observe.logs import configure_logging
    from syncer.run.publication import rollback
    from syncer.store.location import require_existing

    loaded = load_args_config(args)
    configure_logging(loaded.config.log_level, sys.stderr)
    url = args.state or loaded.state_url
    require_existing(url)  # no state: nothing was published to roll back to
    store = open_writable(url)
    try:
        row = rollback(store, datetime.now(timezone.utc), args.to, args.note)
    finally:
        store.close()
    print(f"rolled back from {row.previous_version} to {row.version}; the next sync "
          f"re-decides everyone with it and cites the rollback in the audit log. Syncs keep "
          f"{row.version} whatever {loaded.model_path.name} holds, until `syncer model "
          "publish` of a changed file.")
    return 0


def cmd_model_history(args: argparse.Namespace) -> int:
    from syncer.store import model_versions
    from syncer.store.read_only import open_read_only

    loaded = load_args_config(args)
    store = open_read_only(args.state or loaded.state_url)
    try:
        rows = model_versions.history(store, args.limit)
    finally:
        store.close()
    if not rows:
        print("no model published yet: the next sync publishes "
              f"{loaded.model_path.name} (or run `syncer model publish`)")
        return 0
    head = rows[0]
    pinned = (f" (rollback #{head.id} pins it until a changed model file is published)"
              if head.pins else "")
    print(f"active: {head.version}{pinned}")
    for row in rows:
        since = f" from {row.previous_version}" if row.previous_version else ""
        note = f"  {row.note}" if row.note else ""
        print(f"  #{row.id:<4} {_when(row.at)}  {row.action:<8} {row.version}{since}{note}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    model = sub.add_parser("model", help="preview and inspect qualification models")
    actions = model.add_subparsers(dest="model_command", required=True)

    diff = add_config_option(actions.add_parser(
        "diff", help="replay the stored profiles through two models and report who would "
                     "change stage, and why (writes nothing)"))
    diff.add_argument("old", metavar="OLD.yaml", help="the model in use")
    diff.add_argument("new", metavar="NEW.yaml", help="the model you want to publish")
    diff.add_argument("--state", help="state database URL (default: the config's)")
    diff.add_argument("--sample", type=_positive, default=10,
                      help="changed people to show with their reasons (default 10)")
    diff.add_argument("--at", type=_at, default=None,
                      help="replay at this instant (ISO 8601; default: now)")
    diff.set_defaults(func=cmd_model_diff)

    show = add_config_option(actions.add_parser(
        "show", help="validate a model and summarize what it does"))
    show.add_argument("path", nargs="?", help="model file (default: the config's model)")
    show.set_defaults(func=cmd_model_show)

    publish = add_config_option(actions.add_parser(
        "publish", help="make the config's model file the active model (syncs also publish "
                        "an edited file, except while a rollback pins a version)"))
    publish.add_argument("--note", help="why: kept with the publication")
    publish.add_argument("--state", help="state database URL (default: the config's)")
    publish.set_defaults(func=cmd_model_publish)

    rollback = add_config_option(actions.add_parser(
        "rollback", help="go back to the model that was active before the current one, "
                         "pinned until a changed model file is published"))
    rollback.add_argument("--to", metavar="VERSION",
                          help="the version (name@hash, or a hash prefix) to make active "
                               "(default: the one active before the current one)")
    rollback.add_argument("--note", help="why: kept with the rollback, cited in the audit")
    rollback.add_argument("--state", help="state database URL (default: the config's)")
    rollback.set_defaults(func=cmd_model_rollback)

    history = add_config_option(actions.add_parser(
        "history", help="list model publications and rollbacks, newest first"))
    history.add_argument("--limit", type=_at_least_one, default=None,
                         help="only the newest N")
    history.add_argument("--state", help="state database URL (default: the config's)")
    history.set_defaults(func=cmd_model_history)

    learn.register(actions)  # calibrate, backtest
