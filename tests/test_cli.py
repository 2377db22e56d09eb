"""The command line as a user runs it: real processes, real sandboxes, real state files."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, select

from syncer.qualify import load_model
from syncer.store.tables import audit, runs
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL

REPO = Path(__file__).resolve().parents[1]


def syncer(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCER_CONFIG", "SYNCER_STATE_URL")}
    return subprocess.run([sys.executable, "-m", "syncer.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_demo_prints_summary_and_explain_works(tmp_path: Path) -> None:
    result = syncer("demo", "--people", "120", "--state-dir", str(tmp_path / "state"),
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"people qualified : \d+", out)
    mqls, sqls = map(int, re.search(r"MQLs / SQLs\s+: (\d+) / (\d+)", out).groups())
    assert mqls + sqls > 0
    assert re.search(r"hubspot\s+: pulled \d+ records .* wrote [1-9]\d* fields", out)
    assert re.search(r"salesforce\s+: pulled \d+ records .* wrote [1-9]\d* fields", out)
    database = tmp_path / "state" / "demo.db"
    assert f"sqlite:///{database}" in out
    with create_engine(f"sqlite:///{database}").connect() as connection:
        assert len(connection.execute(select(audit)).all()) > 0
    email = re.search(r"syncer explain (\S+)", out).group(1)
    explained = syncer("explain", email, "--state", f"sqlite:///{database}", cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith(f"{email}: stage ")
    assert len(explained.stdout.splitlines()) >= 4
    history = syncer("audit", "--email", email, "--state", f"sqlite:///{database}", cwd=tmp_path)
    assert "[written]" in history.stdout

    # The lead conversion: followed to the contact, nothing written to the locked lead.
    converted = re.search(r"converted Salesforce lead (\S+) .*\n.*followed 1 conversion: "
                          r"contact (\S+) carries score (\d+) .*writes to the locked lead: 0; "
                          r"failures: 0", out)
    assert converted, out
    trail = syncer("audit", "--record", converted.group(1), "--field", "identity", "--state",
                   f"sqlite:///{database}", cwd=tmp_path)
    assert f"-> '{converted.group(2)}' [converted]" in trail.stdout
    # The rollback: the looser model's extra MQLs are undone, every write cites it.
    moved = re.search(r"MQLs (\d+) -> (\d+); (\d+) fields written", out)
    back = re.search(r"MQLs back to (\d+); (\d+) fields written back, (\d+) of (\d+) audit "
                     r"rows cite the rollback", out)
    assert moved and back, out
    assert int(moved.group(2)) > int(moved.group(1)) == int(back.group(1))
    assert back.group(3) == back.group(4) != "0"
    assert re.search(r"created\s+: [1-9]\d* qualified people in salesforce", out)
    # Learning from outcomes: calibrated from the state and judged, or said why not; a
    # learned model is published only when it ranks the newest people better.
    learning = out[out.index("Learning from outcomes:"):]
    learned = tmp_path / "state" / "learned-model.yaml"
    if "not enough history" not in learning.splitlines()[0]:
        aucs = re.search(r"learned AUC ([\d.]+) .* current model's ([\d.]+)", learning)
        assert aucs and learned.exists(), learning
        assert load_model(learned).name == "learned"
        published = "published learned@" in learning
        assert published == (float(aucs.group(1)) > float(aucs.group(2))), learning


def test_check_config_reports_problems_and_exit_code(tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = str(EXAMPLE_MODEL)
    data["connectors"][0]["kind"] = "hubspott"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = syncer("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "connectors[0] (name: hubspot).kind" in result.stderr
    assert "Traceback" not in result.stderr
    good = syncer("check-config", "--config", str(EXAMPLE_CONFIG), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout and "connector hubspot" in good.stdout


def test_daemon_runs_jobs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = str(EXAMPLE_MODEL)
    data["state"] = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    data["sandbox"] = {"seed": 3, "people": 60}
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCER_CONFIG", "SYNCER_STATE_URL")}
    process = subprocess.Popen([sys.executable, "-m", "syncer.cli", "run", "--config", str(path)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    engine = create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        deadline = time.monotonic() + 900  # stops a hung daemon; a slow one is waited for
        finished: list[Any] = []
        while time.monotonic() < deadline and len(finished) < 2:
            time.sleep(0.5)
            if (tmp_path / "state.db").exists():
                try:
                    with engine.connect() as connection:
                        finished = connection.execute(
                            select(runs).where(runs.c.status == "succeeded")).all()
                except Exception:  # the daemon may be creating the schema
                    finished = []
        assert {row.connectors for row in finished} == {"hubspot", "salesforce"}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        engine.dispose()
    assert process.returncode == 0, err
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert "daemon.started" in events and events[-1] == "daemon.stopped"
    # Runs never overlapped: one worker, one run at a time.
    intervals = sorted((r.started_at, r.finished_at) for r in finished)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(intervals))


def test_a_named_score_the_model_lacks_is_refused_at_start_up(tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = str(EXAMPLE_MODEL)
    data["connectors"][0]["fields"]["scores"] = {"lead_routeing": {"score": "syncer_score"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = syncer("check-config", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "lead_routeing" in result.stderr and "did you mean 'lead_routing'" in \
        result.stderr
    assert "Traceback" not in result.stderr
