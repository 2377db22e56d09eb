"""The lazy world and its activity index: what lets the sandboxes serve a million people.

Correctness only (speed is in bench/bench_sandbox.py): the fast generation draws the very
world the original did, the cheap views of a person agree with the full one, and the
index puts every activity in its bucket exactly once, in one process or several.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

from connectors.sandbox.index import BUCKETS, KINDS_BY_CODE, WorldIndex, unpack
from connectors.sandbox.world import (
    IN_HUBSPOT,
    IN_SALESFORCE,
    SALESFORCE_CONTACT,
    World,
    WorldPerson,
    activity_scale_for,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
#: sha256 of World(7, 160, NOW).people() as generated before generation was made lazy and
#: fast (company_index left out, and the values added since from streams of their own:
#: source and activity durations): the conftest world every pipeline test uses.
WORLD_7_160 = "2266499a7e8b6528d3df09637f74ca2483ba87f28469c83ebcf8abcb996424e1"


def digest(people: list[WorldPerson]) -> str:
    made = hashlib.sha256()
    for person in people:
        data = dataclasses.asdict(person)
        data.pop("company_index")
        data.pop("source")
        for activity in data["activities"]:
            activity["detail"].pop("duration", None)
        made.update(json.dumps(data, default=str, sort_keys=True).encode())
    return made.hexdigest()


def test_same_seed_same_world_as_before() -> None:
    assert digest(World(7, 160, NOW).people()) == WORLD_7_160


def test_cheap_views_agree_with_the_full_person() -> None:
    world = World(3, 400, NOW, activity_scale=1.9)
    for i in range(0, 400, 7):
        full = world.person(i)
        assert world.person(i, with_activities=False) == dataclasses.replace(full,
                                                                             activities=())
        raw = world.raw_activities(i)
        assert [(a.type, a.occurred_at, a.channel, a.detail) for a in full.activities] == [
            (kind, NOW - timedelta(seconds=offset), channel, detail)
            for offset, kind, channel, detail in raw]
        flags = world.flags(i)
        assert bool(flags & IN_HUBSPOT) == full.in_hubspot
        assert bool(flags & IN_SALESFORCE) == full.in_salesforce
        assert bool(flags & SALESFORCE_CONTACT) == (full.salesforce_object == "Contact")
        company = world.company(full.company_index)
        assert (company.name, company.industry, company.employees, company.country) == (
            full.company, full.industry, full.employees, full.country)


def test_activity_scale_changes_only_activity_counts() -> None:
    plain, dense = World(5, 3000, NOW), World(5, 3000, NOW,
                                              activity_scale=activity_scale_for(10))
    mean = sum(len(dense.raw_activities(i)) for i in range(3000)) / 3000
    assert 9.5 < mean < 10.5
    assert 4.7 < sum(len(plain.raw_activities(i)) for i in range(3000)) / 3000 < 5.7
    for i in range(0, 3000, 97):
        assert dataclasses.replace(plain.person(i), activities=()) == \
            dataclasses.replace(dense.person(i), activities=())


def test_index_holds_every_activity_once_in_its_bucket() -> None:
    world = World(9, 700, NOW, activity_scale=1.5)
    index = world.index()
    seen: Counter[tuple[str, int, int]] = Counter()
    for channel in ("hubspot", "salesforce"):
        for bucket in range(BUCKETS):
            start = index.bucket_start(bucket)
            for entry, code in zip(index.entries(channel, bucket),
                                   index.kinds(channel, bucket), strict=True):
                person, ordinal = unpack(entry)
                activity = world.person(person).activities[ordinal]
                assert activity.channel == channel and KINDS_BY_CODE[code] is activity.type
                assert start <= activity.occurred_at < start + timedelta(minutes=15)
                assert index.bucket_of(activity.occurred_at) == bucket
                seen[(channel, person, ordinal)] += 1
    expected = {(a.channel, p.index, k) for p in world.people()
                for k, a in enumerate(p.activities)}
    assert set(seen) == expected and set(seen.values()) == {1}
    stats = index.stats()
    assert sum(stats.activities.values()) == len(expected) and stats.approx_bytes > 0
    assert index.bucket_of(NOW - timedelta(days=400)) == -1
    assert index.bucket_of(NOW + timedelta(days=1)) == BUCKETS


def test_index_built_by_worker_processes_is_the_same() -> None:
    serial = WorldIndex.build(World(4, 20_000, NOW, activity_scale=1.2), workers=1)
    world = World(4, 20_000, NOW, activity_scale=1.2)
    parallel = WorldIndex.build(world, workers=2)
    for channel in ("hubspot", "salesforce"):
        for bucket in range(0, BUCKETS, 3):
            assert list(serial.entries(channel, bucket)) == list(
                parallel.entries(channel, bucket))
            assert list(serial.kinds(channel, bucket)) == list(parallel.kinds(channel, bucket))
    assert all(world.flags(i) == serial.world.flags(i) for i in range(0, 20_000, 37))


def test_a_million_people_cost_nothing_until_asked_for() -> None:
    world = World(1, 1_000_000, NOW, activity_scale=activity_scale_for(10))
    last = world.person(999_999)
    assert last.email.endswith(f".999999@{last.domain}") and not world.index_ready()
