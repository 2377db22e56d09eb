"""The demo remembers itself, and commands that read state never create it.

After `syncer demo` in a fresh folder, the commands it suggests read its state with no
--state or --config (the demo leaves a syncer.yaml the usual lookup finds); a syncer.yaml
of the user's own is left alone. A command that only reads state refuses a SQLite file
that is not there (one line, exit 2) and does not create it; a state URL that is not one
is one line too, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from syncer.cli import main
from syncer.cli.demo_config import DEMO_MARK, demo_config_path, is_demo_config
from syncer.observe.logs import configure_logging
from syncer.store import model_versions
from syncer.store.location import NoState, StateUrlInvalid, require_existing
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from syncer.store.tables import runs
from tests.conftest import EXAMPLE_MODEL

PEOPLE = "40"


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder as the working directory, with no config or state in the
    environment."""
    monkeypatch.delenv("SYNCER_CONFIG", raising=False)
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    configure_logging("info")  # the demo points the logs at stderr


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command, in-process."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def demo(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, err = run(capsys, "demo", "--people", PEOPLE)
    assert code == 0, err
    return out


def test_after_the_demo_every_command_reads_its_state_without_flags(
        fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = demo(capsys)
    database = fresh / ".syncer" / "demo.db"
    assert is_demo_config(fresh / "syncer.yaml")
    assert "--state" not in out and "--config" not in out
    with create_engine(f"sqlite:///{database}").connect() as db:
        demo_runs = db.execute(select(func.count()).select_from(runs)).scalar_one()
    assert demo_runs >= 3

    code, listed, _ = run(capsys, "runs", "--json", "--limit", "100")
    assert code == 0 and len(listed.splitlines()) == demo_runs
    email = re.search(r"syncer explain (\S+)", out)
    assert email, out
    code, explained, _ = run(capsys, "explain", email.group(1))
    assert code == 0 and explained.startswith(f"{email.group(1)}: stage ")
    code, trail, _ = run(capsys, "audit", "--email", email.group(1))
    assert code == 0 and "[written]" in trail
    store = Store.open(f"sqlite:///{database}")
    try:
        active = model_versions.active(store)
        assert active is not None
        code, history, _ = run(capsys, "model", "history")
        assert code == 0 and history.startswith(f"active: {active.version}")
    finally:
        store.close()
    assert run(capsys, "report")[0] == 0
    assert run(capsys, "dead-letters")[1].strip() == "no dead letters"
    assert sorted(p.name for p in fresh.iterdir()) == [".syncer", "syncer.yaml"]

    # Run again, the demo replaces its own config (and its state) in place.
    demo(capsys)
    assert is_demo_config(fresh / "syncer.yaml")
    assert not (fresh / ".syncer" / "syncer.yaml").exists()


def test_the_demo_leaves_a_config_of_the_users_own_alone(
        fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = fresh / "syncer.yaml"
    own.write_text("# mine\nstate: {url: 'sqlite:///mine.db'}\n", encoding="utf-8")
    out = demo(capsys)
    written = fresh / ".syncer" / "syncer.yaml"
    assert own.read_text(encoding="utf-8").startswith("# mine") and is_demo_config(written)
    assert ("./syncer.yaml is your own, so the demo left it alone and wrote "
            ".syncer/syncer.yaml: pass --config .syncer/syncer.yaml") in out
    email = re.search(r"syncer explain (\S+) --config (\S+)", out)
    assert email and email.group(2) == ".syncer/syncer.yaml", out
    code, explained, _ = run(capsys, "explain", email.group(1), "--config", email.group(2))
    assert code == 0 and explained.startswith(f"{email.group(1)}: stage ")
    assert not (fresh / "mine.db").exists()


def test_where_the_demo_writes_its_config(tmp_path: Path) -> None:
    state = tmp_path / ".syncer"
    assert demo_config_path(tmp_path, state) == tmp_path / "syncer.yaml"  # none there
    (tmp_path / "syncer.yaml").write_text(f"{DEMO_MARK}: an earlier demo\n")
    assert demo_config_path(tmp_path, state) == tmp_path / "syncer.yaml"
    (tmp_path / "syncer.yaml").write_text("state: {}\n")
    assert demo_config_path(tmp_path, state) == state / "syncer.yaml"
    (tmp_path / "syncer.yaml").write_bytes(b"\xff\xfe\x00binary")
    assert demo_config_path(tmp_path, state) == state / "syncer.yaml"
    # --state-dir . : never over the user's file either
    assert demo_config_path(tmp_path, tmp_path) == tmp_path / "syncer.cli.demo.yaml"


READERS = [
    ("explain", "someone@example.com"), ("audit",), ("audit", "verify"), ("runs",),
    ("report",), ("dead-letters",), ("model", "history"), ("model", "rollback"),
    ("model", "diff", str(EXAMPLE_MODEL), str(EXAMPLE_MODEL)),
]


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_command_that_reads_state_never_creates_it(
        command: tuple[str, ...], fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = fresh / "typo" / "stat.db"
    code, out, err = run(capsys, *command, "--state", f"sqlite:///{missing}")
    assert (code, out) == (2, "")
    assert err == (f"syncer: no state at {missing}: run `syncer sync --once` (or `syncer "
                   "demo`) first, or pass --state URL\n")
    assert not missing.exists() and not missing.parent.exists()
    # Without --state: the config's state (the shipped example's, relative to here).
    code, _, err = run(capsys, *command)
    assert code == 2
    assert err.startswith(f"syncer: no state at {fresh / '.syncer' / 'state.db'}: ")
    assert not (fresh / ".syncer").exists()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db", "mysql://u:secret@h/d",
                                 "postgres://u:secret@h/d"])
def test_a_state_url_that_is_not_one_is_one_line(
        url: str, fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (("runs",), ("model", "publish")):
        code, out, err = run(capsys, *command, "--state", url)
        assert (code, out) == (2, "")
        assert len(err.splitlines()) == 1
        assert "is not a database URL" in err or \
            "syncer keeps its state in SQLite or PostgreSQL" in err
        assert "secret" not in err and "Traceback" not in err
    with pytest.raises(StateUrlInvalid):
        require_existing(url)


def test_require_existing(tmp_path: Path) -> None:
    with pytest.raises(NoState, match="no state at"):
        require_existing(f"sqlite:///{tmp_path / 'absent.db'}")
    (tmp_path / "here.db").write_bytes(b"")
    require_existing(f"sqlite:///{tmp_path / 'here.db'}")
    require_existing("sqlite://")  # in memory: nothing to look for
    require_existing("postgresql+psycopg://user@127.0.0.1:1/db")  # the server answers


def test_a_command_that_reads_state_never_writes_or_migrates_it(
        fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = fresh / "state.db"
    url = f"sqlite:///{database}"
    Store.open(url).close()
    before = database.read_bytes()
    for command in READERS[:-2]:  # model rollback writes; model diff has its own tests
        assert run(capsys, *command, "--state", url)[0] in (0, 1), command  # 1: no decision
    assert database.read_bytes() == before
    # A state an older syncer left: read commands say to sync first; nothing migrates it.
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(text("UPDATE schema_version SET version = :v"), {"v": LATEST - 1})
    engine.dispose()
    code, out, err = run(capsys, "audit", "--state", url)
    assert (code, out) == (2, "")
    assert err.startswith(f"syncer: the state database is at schema version {LATEST - 1}; this "
                          f"syncer expects {LATEST}. Fix: run `syncer sync --once`")
    with create_engine(url).connect() as db:
        assert db.execute(text("SELECT max(version) FROM schema_version")).scalar() == \
            LATEST - 1
