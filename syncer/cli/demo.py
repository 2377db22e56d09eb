"""`syncer demo`: both sandbox CRMs in-process, one full sync with the example config,
and a summary a revops admin can read in ten seconds; then a lead conversion and a model
rollback, each a real sync (syncer/cli/demo_story.py). It leaves a config behind
(syncer/cli/demo_config.py), so the commands it suggests read its state without flags."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

from connectors.sandbox.world import World
from syncer.cli.commands.setup import set_up_all, setup_summary
from syncer.cli.demo_config import (
    config_flag,
    demo_config_data,
    demo_config_path,
    lookup_note,
    write_demo_config,
)
from syncer.cli.demo_learning import learning_loop
from syncer.cli.demo_story import lead_conversion, model_rollback
from syncer.cli.progress_display import display_for
from syncer.cli.run_summary import format_summary
from syncer.cli.runtime import Runtime
from syncer.domain.config import EXAMPLE_CONFIG, load_config
from syncer.observe.logs import configure_logging
from syncer.run.pipeline import run_sync


def run_demo(people: int, seed: int, state_dir: Path) -> int:
    """Run the demo on a fresh state database in `state_dir`; print the summary. The
    demo's config is written first (./syncer.yaml, see syncer/cli/demo_config.py) and the
    demo runs from that file, so what later commands read is exactly what it used."""
    configure_logging("error", sys.stderr)
    state_dir.mkdir(parents=True, exist_ok=True)
    database = (state_dir / "demo.db").resolve()
    for stale in (database, database.with_suffix(".db-wal"), database.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)
    model_file = (state_dir / "demo-model.yaml").resolve()
    model_file.write_text(load_config(EXAMPLE_CONFIG).model_path.read_text(encoding="utf-8"),
                          encoding="utf-8")
    config_file = write_demo_config(demo_config_path(Path.cwd(), state_dir),
                                    demo_config_data(database, model_file, people, seed))
    loaded = load_config(config_file)
    now = datetime.now(timezone.utc)
    # Sandboxes as a new portal and org are: without syncer's fields, which setup creates.
    fresh = World(seed, people, now, syncer_fields=False)
    with Runtime(loaded, now=now, world=fresh) as runtime:
        print(f"syncer demo: {people} synthetic people (seed {seed}) in sandbox CRMs: "
              + ", ".join(f"{n} at {s.base_url}" for n, s in runtime.sandboxes.items()))
        print(setup_summary(set_up_all(loaded, runtime, dry_run=False)))
        with display_for(sys.stderr):  # progress on a terminal
            summary = run_sync(loaded, runtime.require_store(), runtime.connectors,
                               runtime.model, now)
        print(format_summary(summary, loaded.state_url))
        for line in lead_conversion(loaded, runtime) + model_rollback(loaded, runtime,
                                                                      model_file):
            print(line)
        for line in learning_loop(loaded, runtime, model_file):
            print(line)
        store = runtime.require_store()
        mqls = [d for d in store.decisions(store.person_keys(), scores=False).values()
                if d.stage.value in ("mql", "sql")]
        example_key = max(mqls, key=lambda d: d.score).key if mqls else None
    for line in follow_ups(config_file, loaded.state_url, example_key):
        print(line)
    return 0 if not summary.failures else 1


def follow_ups(config_file: Path, state_url: str, example_key: str | None) -> list[str]:
    """Where the demo's config is, and commands that read its state from here."""
    flag = config_flag(config_file)
    note = lookup_note(config_file)
    shown = make_url(state_url).render_as_string(hide_password=True)
    lines = ["", f"The demo's config is {config_file} (state {shown}); "
                 "in this folder every command reads it" + (":" if not note else ".")]
    lines += [f"  {note}"] if note else []
    lines += [f"  syncer explain {example_key}{flag}     # why is this lead qualified?",
              f"  syncer audit --email {example_key}{flag}"] if example_key else []
    lines += [f"  syncer runs{flag}", f"  syncer model history{flag}", f"  syncer report{flag}"]
    return lines
