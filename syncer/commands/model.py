"""`syncer model diff` and `syncer model show`: look at a model before publishing it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from syncer.commands.common import add_config_option, config_path
from syncer.config import load_config
from syncer.qualify import Model, ModelError, load_model
from syncer.qualify.model import EngagementRule


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


def _load_both(old_path: str, new_path: str) -> tuple[Model, Model] | None:
    """Both models, or None after printing every problem of both files."""
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
    from syncer.preview import PreviewError, diff_models, format_diff, open_read_only

    models = _load_both(args.old, args.new)
    if models is None:
        return 2
    loaded = load_config(config_path(args.config))
    url = args.state or loaded.state_url
    now = args.at or datetime.now(timezone.utc)
    try:
        store = open_read_only(url)
    except PreviewError as error:
        print(f"model diff: {error}", file=sys.stderr)
        return 2
    try:
        result = diff_models(store, loaded, models[0], models[1], now, args.sample)
    finally:
        store.close()
    print("\n".join(format_diff(result)))
    return 0


def describe(model: Model) -> list[str]:
    """A short overview of a model: what each section does, one line each."""
    fit, engagement, q, life = (model.fit, model.engagement, model.qualification,
                                model.lifecycle)
    grades = ", ".join(f"{b.grade} >= {b.min:g}" for b in fit.grades)
    if engagement.decay_steps:
        decay = "steps " + ", ".join(f"<= {s.max_age_days:g}d x{s.factor:g}"
                                     for s in engagement.decay_steps)
    elif engagement.half_life_days:
        decay = f"half-life {engagement.half_life_days:g} days"
    else:
        decay = "none"
    inactive = [r for r in engagement.rules if r.inactive_days is not None]
    if q.mode == "matrix":
        bands = ", ".join(f"{b.band} >= {b.min:g}" for b in engagement.bands or ())
        rule = f"matrix {', '.join(q.matrix or ())} (bands {bands})"
    else:
        parts = [f"score >= {q.mql_score:g}"]
        parts += [f"fit >= {q.min_fit:g}"] if q.min_fit is not None else []
        parts += ([f"engagement >= {q.min_engagement:g}"] if q.min_engagement is not None
                  else [])
        rule = "total: " + ", ".join(parts)
    hand = ", ".join(t.value for t in q.hand_raise)
    window = f"{q.hand_raise_days:g}" if q.hand_raise_days else f"{engagement.lookback_days:g}"
    recycle = "; ".join(f"{r.id} ({'/'.join(r.from_)} -> {r.to} after "
                        f"{r.inactive_days:g} days)" for r in life.recycle) or "none"
    return [
        f"model {model.version}" + (f": {model.description}" if model.description else ""),
        f"  fit: {len(fit.rules)} rules; grades {grades}",
        f"  engagement: {len(engagement.rules) - len(inactive)} activity rules, "
        f"{len(inactive)} inactivity rules ({_inactivity(inactive)}); decay {decay}; "
        f"lookback {engagement.lookback_days:g} days",
        f"  MQL when {rule}",
        f"  SQL on a hand-raise within {window} days: {hand}",
        "  subscriber activities: "
        + (", ".join(t.value for t in life.subscriber_activities) or "none (no subscriber "
                                                                       "stage)"),
        f"  recycle: {recycle}",
        "  disqualify: " + (", ".join(r.id for r in life.disqualify) or "none")
        + f"; disqualified is {'kept' if life.keep_disqualified else 're-evaluated'}",
        f"  routing: assign at {model.routing.assign_at}",
    ]


def _inactivity(rules: list[EngagementRule]) -> str:
    return ", ".join(f"{r.points:g} after {r.inactive_days:g} days" for r in rules) or "-"


def cmd_model_show(args: argparse.Namespace) -> int:
    path = args.path or str(load_config(config_path(args.config)).model_path)
    print("\n".join(describe(load_model(path))))
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
