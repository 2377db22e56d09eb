"""Benchmark of the qualification core: 100,000 profiles of 10 activities each, one core.

    /tmp/venv/bin/python -m bench.bench_qualify [--profiles N] [--activities K] [--rounds R]
                                                [--model PATH] [--without-named] [--cpu C]

The profiles are deterministic: people (titles, companies, industries, sizes, countries,
free-mail and competitor addresses, lead source as HubSpot names it, a visit count) come
from the sandbox world (connectors/sandbox_world),
and each gets exactly K activities drawn with the world's activity mix from a generator
seeded by the person's index, spread over the world's 180 days of history, with the
world's page URLs (with seconds on the page), emails, forms and webinars as attributes.
Profiles are built before the clock starts; only `qualify` is timed.

One core: qualifying is single-threaded, so the figure that matters is profiles per second
of CPU time (`time.process_time`), which other work on a shared machine does not inflate;
wall-clock throughput is shown too. `--cpu C` pins the process to CPU C;
`--without-named` drops the model's named scores (`scores:`), to measure what they cost.
The best of R rounds is reported. As in a sync (which qualifies a chunk of 500 people, saves the
decisions and moves on), decisions are counted and dropped, not kept; the input profiles
are moved out of the garbage collector's sight (`gc.freeze`), as they are long-lived input
data that a real run would not hold 100,000 at a time.

Peak memory is the process's peak resident set size (getrusage), which includes the
profiles themselves; the table also shows it after building them, so the difference is what
qualifying added.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import platform
import random
import resource
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connectors.sandbox.outcomes import SOURCE_BY_KEY
from connectors.sandbox.world import (
    ACTIVITY_MIX,
    CONTENT_ASSETS,
    EMAILS,
    HAND_RAISES,
    HISTORY_DAYS,
    PAGES,
    WEBINARS,
    World,
)
from syncer.domain.types import Activity, ActivityType, Person, Profile
from syncer.qualify import Model, load_model, qualify

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
SITE = "https://www.syncer-sandbox.test"
#: Attribute dicts are shared between activities (they are read-only), as a store would
#: not share them but a benchmark of the core should not be a benchmark of dict allocation.
_ATTRIBUTES: dict[tuple[str, str], dict[str, str]] = {}


def _attributes(key: str, value: str) -> dict[str, str]:
    found = _ATTRIBUTES.get((key, value))
    if found is None:
        found = _ATTRIBUTES[(key, value)] = {key: value}
    return found


def _detail(rng: random.Random, kind: ActivityType) -> dict[str, str]:
    if kind is ActivityType.PAGE_VIEW:  # with seconds on the page, as the sandbox gives
        return {"url": SITE + rng.choice(PAGES), "duration": str(rng.randrange(5, 400))}
    if kind is ActivityType.PRICING_PAGE_VIEW:
        return _attributes("url", SITE + "/pricing")
    if kind in (ActivityType.EMAIL_OPEN, ActivityType.EMAIL_CLICK, ActivityType.EMAIL_BOUNCE,
                ActivityType.UNSUBSCRIBE):
        return _attributes("email", rng.choice(EMAILS))
    if kind is ActivityType.CONTENT_DOWNLOAD:
        return _attributes("asset", rng.choice(CONTENT_ASSETS))
    if kind in (ActivityType.WEBINAR_REGISTRATION, ActivityType.WEBINAR_ATTENDANCE):
        return _attributes("campaign", rng.choice(WEBINARS))
    if kind is ActivityType.FORM_FILL:
        return _attributes("form", "Contact us" if rng.random() < 0.5 else "Event sign-up")
    if kind is ActivityType.NEWSLETTER_SIGNUP:
        return _attributes("form", "Newsletter")
    return _attributes("form", kind.value.replace("_", " ").capitalize())


def build_profiles(count: int, activities: int, now: datetime = NOW) -> list[Profile]:
    """`count` profiles of exactly `activities` activities each, the same on every run."""
    world = World(seed=1, size=count, now=now)
    kinds = [kind for kind, _ in ACTIVITY_MIX]
    weights = [weight for _, weight in ACTIVITY_MIX]
    profiles: list[Profile] = []
    for i in range(count):
        p = world.person(i)
        rng = random.Random(i * 7919 + 17)
        chosen = rng.choices(kinds, weights=weights, k=activities)
        if rng.random() < 0.06:  # a few hand-raises, as in the sandbox world
            chosen[-1] = rng.choice(HAND_RAISES)
        record_id = str(i)
        acts = tuple(
            Activity("hubspot", f"{i}-{n}", record_id, kind,
                     now - timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400)),
                     _detail(rng, kind))
            for n, kind in enumerate(chosen))
        properties = {"source": SOURCE_BY_KEY[p.source].hubspot,
                      "visits": float(chosen.count(ActivityType.PAGE_VIEW))}
        person = Person("hubspot", record_id, "contact", p.email, p.first_name, p.last_name,
                        p.title, p.company, p.industry, p.employees, p.country,
                        properties=properties)
        profiles.append(Profile(p.email, (person,), acts))
    return profiles


@dataclass
class Round:
    wall: float
    cpu: float
    stages: collections.Counter[str]
    reasons: int


def run_round(profiles: list[Profile], model: Model, now: datetime) -> Round:
    stages: collections.Counter[str] = collections.Counter()
    reasons = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for profile in profiles:
        decision = qualify(profile, model, now)
        stages[decision.stage] += 1
        reasons += len(decision.reasons)
    return Round(time.perf_counter() - wall, time.process_time() - cpu, stages, reasons)


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=str(ROOT / "config" / "model.example.yaml"))
    parser.add_argument("--without-named", action="store_true",
                        help="drop the model's named scores (scores:)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    args = parser.parse_args(argv)

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    model = load_model(args.model)
    if args.without_named:
        model = model.model_copy(update={"scores": []})
    started = time.perf_counter()
    profiles = build_profiles(args.profiles, args.activities)
    built = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    rss_built = peak_rss_mib()

    rounds = [run_round(profiles, model, NOW) for _ in range(args.rounds)]
    best_cpu = min(r.cpu for r in rounds)
    best_wall = min(r.wall for r in rounds)
    last = rounds[-1]
    count = len(profiles)
    rows = [
        ("model", model.version),
        ("named scores", ", ".join(s.name for s in model.scores) or "none"),
        ("profiles x activities", f"{count:,} x {args.activities}"),
        ("build profiles (s)", f"{built:.1f}"),
        ("rounds, CPU (s)", ", ".join(f"{r.cpu:.2f}" for r in rounds)),
        ("rounds, wall (s)", ", ".join(f"{r.wall:.2f}" for r in rounds)),
        ("profiles/s per core (best, CPU)", f"{count / best_cpu:,.0f}"),
        ("profiles/s (best, wall)", f"{count / best_wall:,.0f}"),
        ("total seconds (best, CPU)", f"{best_cpu:.2f}"),
        ("reasons per decision", f"{last.reasons / count:.1f}"),
        ("stages", ", ".join(f"{k} {v / count:.1%}" for k, v in last.stages.most_common())),
        ("peak RSS after building (MiB)", f"{rss_built:,.0f}"),
        ("peak RSS (MiB)", f"{peak_rss_mib():,.0f}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("machine", f"{platform.machine()}, {os.cpu_count()} CPUs"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
