"""What a user sees when they get something wrong: bad configs, model files, state URLs,
flags and history CSVs, each run through the real command line (syncer.cli.main in
process; a few in a child process, as a shell runs it).

Each must exit with its documented code (2 bad input, 3 unreachable; syncer --help), say
what is wrong in words the user can search their input for, say how to fix it, and never
print a traceback (that needs --debug)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.cli import main
from syncer.domain.failures import EXIT_BAD_INPUT, EXIT_UNREACHABLE, SyncerError
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL

CONFIG: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
MODEL: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text())
#: a PostgreSQL state on a port nothing listens on
CLOSED_PG = "postgresql+psycopg://syncer:hunter2secret@127.0.0.1:1/syncer"
HISTORY = "id,converted,title,employees\n" + "".join(
    f"{n},{'yes' if n % 3 == 0 else 'no'},{'VP Sales' if n % 2 else 'Intern'},{n * 10}\n"
    for n in range(1, 41))


def config_text(change: Callable[[dict[str, Any]], None]) -> str:
    """The shipped example config (its model by absolute path) with one change."""
    data = copy.deepcopy(CONFIG)
    data["model"] = str(EXAMPLE_MODEL)
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def model_text(change: Callable[[dict[str, Any]], None]) -> str:
    """The shipped example model with one change."""
    data = copy.deepcopy(MODEL)
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def fit_rule(rule: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["fit"]["rules"].append({"id": "extra", "field": "title", **rule})


def engagement_rule(rule: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["engagement"]["rules"].append({"id": "extra", **rule})


def set_path(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set data[a][b]... ("a.b.0.c") to `value`."""
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    return change


def real_hubspot(data: dict[str, Any]) -> None:
    """The first connector pointed at a real portal with an env-var token."""
    connector = data["connectors"][0]
    connector.pop("sandbox", None)
    connector["base_url"] = "https://api.hubapi.com"
    connector["credentials"] = {"access_token": {"env": "SYNCER_TEST_UNSET_TOKEN"}}


@dataclass(frozen=True)
class Case:
    """One bad input: the command line ({tmp}: the test's folder, {model}: the example
    model), the files to write first, the exit code and a phrase of the message."""

    argv: tuple[str, ...]
    code: int
    phrase: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    fix: str = "Fix"


def check(args: str, code: int, phrase: str, **files: str | bytes) -> Case:
    return Case(("check-config", "--config", "{tmp}/" + args), code, phrase, files)


def show(args: str, phrase: str, **files: str | bytes) -> Case:
    return Case(("model", "show", "{tmp}/" + args), EXIT_BAD_INPUT, phrase, files)


CALIBRATE = ("model", "calibrate", "--history", "{tmp}/h.csv", "--outcome", "converted",
             "--output", "{tmp}/out.yaml")
BACKTEST = ("model", "backtest", "--history", "{tmp}/h.csv", "--outcome", "converted",
            "--model", "{model}", "--against", "{model}")
MISSING_DB = "sqlite:///{tmp}/typo/state.db"
#: the fix NoState gives (its message predates the "Fix:" habit; scripts match it)
NO_STATE_FIX = "run `syncer sync --once` (or `syncer demo`) first, or pass --state URL"

CASES: dict[str, Case] = {
    # --- configs
    "config missing file": check("nope.yaml", 2, "file not found"),
    "config binary file": check("c.yaml", 2, "not a text file", **{"c.yaml": b"\x00\xff\xfe"}),
    "config invalid YAML": check("c.yaml", 2, "line 2", **{"c.yaml": "a: 1\n  b: [2\n"}),
    "config not a mapping": check("c.yaml", 2, "expected a mapping", **{"c.yaml": "- 1\n"}),
    "config unknown key": check("c.yaml", 2, "stat", **{
        "c.yaml": config_text(lambda d: d.update(stat={"url": "sqlite://"}))}),
    "config unknown connector kind": check("c.yaml", 2, "kind", **{
        "c.yaml": config_text(set_path("connectors.0.kind", "hubspott"))}),
    "config bad secret ref": check("c.yaml", 2, "credentials", **{
        "c.yaml": config_text(lambda d: (real_hubspot(d), d["connectors"][0].update(
            credentials={"access_token": {"vault": "x"}})))}),
    "config secret env var unset": check("c.yaml", 2, "SYNCER_TEST_UNSET_TOKEN", **{
        "c.yaml": config_text(real_hubspot)}),
    "config secret file missing": check("c.yaml", 2, "cannot be read", **{
        "c.yaml": config_text(lambda d: (real_hubspot(d), d["connectors"][0].update(
            credentials={"access_token": {"file": "/nonexistent/token"}})))}),
    "config bad stage value": check("c.yaml", 2, "stage_values", **{
        "c.yaml": config_text(set_path("connectors.0.stage_values.mqll", "x"))}),
    "config bad schedule": check("c.yaml", 2, "every_minutes", **{
        "c.yaml": config_text(set_path("connectors.0.schedule.every_minutes", "often"))}),
    "config missing model file": check("c.yaml", 2, "file not found", **{
        "c.yaml": config_text(set_path("model", "/nonexistent/model.yaml"))}),
    "config bad log level": check("c.yaml", 2, "log_level", **{
        "c.yaml": config_text(set_path("log_level", "loud"))}),
    # --- model files
    "model missing file": show("nope.yaml", "file not found"),
    "model binary file": show("m.yaml", "UTF-8", **{"m.yaml": b"\x00\xff\xfe"}),
    "model invalid YAML": show("m.yaml", "line", **{"m.yaml": "fit: [\n"}),
    "model unknown activity": show("m.yaml", "webinar_atendance", **{
        "m.yaml": model_text(engagement_rule({"activity": "webinar_atendance",
                                              "points": 5}))}),
    "model bad regex": show("m.yaml", "regex", **{
        "m.yaml": model_text(fit_rule({"regex": "(unclosed", "points": 5}))}),
    "model table with yes/no keys": show("m.yaml", "yes", **{
        "m.yaml": model_text(fit_rule({"table": {True: 5, False: 0}}))}),
    "model bins not rising": show("m.yaml", "bins", **{
        "m.yaml": model_text(fit_rule({"field": "employees", "bins": [
            {"below": 100, "points": 1}, {"below": 10, "points": 2}, {"points": 3}]}))}),
    "model unknown key": show("m.yaml", "pointz", **{
        "m.yaml": model_text(fit_rule({"equals": "ceo", "pointz": 5}))}),
    "model duplicate rule id": show("m.yaml", "c_level_title", **{
        "m.yaml": model_text(lambda d: d["fit"]["rules"].append(
            copy.deepcopy(d["fit"]["rules"][0])))}),
    # --- state URLs
    "state URL unparseable": Case(("runs", "--state", "not a url"), 2,
                                  "is not a database URL"),
    "state URL unknown driver": Case(("audit", "--state", "mysql://u@h/db"), 2,
                                     "SQLite or PostgreSQL"),
    "state sqlite file missing (explain)": Case(
        ("explain", "a@b.example", "--state", MISSING_DB), 2, "no state at", fix=NO_STATE_FIX),
    "state sqlite file missing (report)": Case(
        ("report", "--state", MISSING_DB), 2, "no state at", fix=NO_STATE_FIX),
    "state sqlite file missing (model history)": Case(
        ("model", "history", "--state", MISSING_DB), 2, "no state at", fix=NO_STATE_FIX),
    "state not a database": Case(("runs", "--state", "sqlite:///{tmp}/x.db"), 2,
                                 "state database", {"x.db": "just text, not SQLite\n" * 50}),
    "state PostgreSQL unreachable (read)": Case(("audit", "--state", CLOSED_PG), 3,
        "cannot reach the state database at postgresql+psycopg://syncer@127.0.0.1:1/syncer "
        "(connection refused)"),
    "state PostgreSQL unknown host": Case(
        ("runs", "--state", "postgresql+psycopg://syncer:hunter2secret@db.invalid/syncer"), 3,
        "postgresql+psycopg://syncer@db.invalid/syncer (unknown host)"),
    "state PostgreSQL unreachable (write)": Case(
        ("model", "publish", "--state", CLOSED_PG), 3, "connection refused"),
    # --- flags
    "flag bad --as-of": Case(("sync", "--once", "--as-of", "yesterday"), 2, "--as-of"),
    "flag bad --since": Case(("audit", "--since", "last tuesday"), 2, "--since"),
    "flag negative --limit": Case(("audit", "--limit", "-5"), 2, "--limit"),
    "flag zero runs --limit": Case(("runs", "--limit", "0"), 2, "--limit"),
    "flag unknown command": Case(("snyc",), 2, "invalid choice"),
    "flag --since after --until": Case(
        ("report", "--since", "2026-12-01", "--until", "2026-11-01"), 2, "--since"),
    "flag bad --test-fraction": Case((*CALIBRATE, "--test-fraction", "2"), 2,
                                     "--test-fraction", {"h.csv": HISTORY}),
    "flag sync without --once": Case(("sync",), 2, "--once"),
    "flag --export without --output": Case(
        ("audit", "--export", "csv", "--state", MISSING_DB), 2, "--output"),
    # --- history CSVs
    "csv missing file": Case(CALIBRATE, 2, "h.csv"),
    "csv bad outcome value": Case(CALIBRATE, 2, "'maybe'", {
        "h.csv": HISTORY.replace("\n5,no,", "\n5,maybe,")}),
    "csv missing outcome column": Case(CALIBRATE, 2, "converted", {
        "h.csv": HISTORY.replace("id,converted,", "id,outcome,")}),
    "csv empty file": Case(CALIBRATE, 2, "h.csv", {"h.csv": ""}),
    "csv header only": Case(BACKTEST, 2, "h.csv", {"h.csv": "id,converted,title\n"}),
    "csv single outcome": Case(BACKTEST, 2, "same outcome", {
        "h.csv": HISTORY.replace(",yes,", ",no,")}),
    "csv output folder missing": Case(
        (*BACKTEST, "--scores-out", "{tmp}/no/such/folder/scores.csv"), 2,
        "folder/scores.csv: No such file", {"h.csv": HISTORY}),
    "csv binary file": Case(CALIBRATE, 2, "h.csv", {"h.csv": b"\x00\xff\xfe\x00"}),
}


def materialize(case: Case, tmp: Path) -> list[str]:
    for name, content in case.files.items():
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return [arg.replace("{tmp}", str(tmp)).replace("{model}", str(EXAMPLE_MODEL))
            for arg in case.argv]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of its own, no config or state from the environment, no token set."""
    for name in ("SYNCER_CONFIG", "SYNCER_STATE_URL", "SYNCER_TEST_UNSET_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of `syncer ARGV`; argparse's own errors exit through
    SystemExit, as they do from a shell."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_says_what_and_how_to_fix_it(
        name: str, clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    code, err = run(materialize(case, clean_env), capsys)
    assert code == case.code, err
    assert case.phrase in err, err
    assert case.fix in err, err
    assert "Traceback" not in err and "hunter2secret" not in err, err
    assert "this is a bug" not in err, err


def test_there_are_at_least_thirty_bad_inputs() -> None:
    assert len(CASES) >= 30
    kinds = {name.split()[0] for name in CASES}
    assert kinds == {"config", "model", "state", "flag", "csv"}


def syncer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCER_CONFIG", "SYNCER_STATE_URL")}
    return subprocess.run([sys.executable, "-m", "syncer.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_shell_sees_one_line_and_the_code(tmp_path: Path) -> None:
    """As a shell runs it: the message on stderr, nothing on stdout, the code."""
    done = syncer("runs", "--state", CLOSED_PG, cwd=tmp_path)
    assert done.returncode == EXIT_UNREACHABLE
    assert done.stdout == ""
    assert done.stderr.startswith("syncer: cannot reach the state database at "
                                  "postgresql+psycopg://syncer@127.0.0.1:1/syncer")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "hunter2secret" not in done.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = syncer("runs", "--state", "not a url", "--debug", cwd=tmp_path)
    assert done.returncode == EXIT_BAD_INPUT
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("syncer: the state URL")


def test_an_unexpected_error_is_reported_as_a_bug(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from syncer.cli.commands import inspect

    def broken(_args: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(inspect, "cmd_runs", broken)
    code, err = run(["runs"], capsys)
    assert code == 1
    assert err == ("syncer: unexpected KeyError: this is a bug in syncer. Fix: rerun with "
                   "--debug and report it with the traceback\n")


def test_every_error_a_user_can_cause_shares_one_root() -> None:
    from syncer.domain.api_usage import RetriesExhausted
    from syncer.domain.config_base import ConfigError
    from syncer.domain.connector import ConnectorError
    from syncer.ops.health import HealthServerError
    from syncer.qualify import ModelError
    from syncer.qualify.learn import HistoryError
    from syncer.run.preview import PreviewError
    from syncer.run.publication import PublicationError
    from syncer.store.audit import AuditError
    from syncer.store.location import NoState, StateUnreachable, StateUrlInvalid
    from syncer.store.locks import LockHeld, LostLock
    from syncer.store.migrations import SchemaTooNew
    from syncer.store.read_only import StateUnreadable

    codes = {ConfigError: 2, ModelError: 2, HistoryError: 2, PreviewError: 2,
             PublicationError: 2, NoState: 2, StateUrlInvalid: 2, StateUnreadable: 2,
             HealthServerError: 2, SchemaTooNew: 3, StateUnreachable: 3,
             RetriesExhausted: 3, ConnectorError: 1, LockHeld: 1, LostLock: 1, AuditError: 1}
    for kind, code in codes.items():
        assert issubclass(kind, SyncerError) and kind.exit_code == code, kind
    # code that caught ValueError before keeps catching these
    assert issubclass(ConfigError, ValueError) and issubclass(ModelError, ValueError)


def test_building_the_parser_imports_nothing_heavy() -> None:
    """`syncer --help` stays fast: the command line imports SQLAlchemy, the CRM clients,
    scikit-learn, the sandboxes and the pipeline only inside the commands that use them."""
    code = ("import sys; from syncer.cli import build_parser; build_parser(); "
            "print(','.join(sorted(m for m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    loaded = set(done.stdout.strip().split(","))
    heavy = {"sqlalchemy", "sklearn", "numpy", "hubspot", "simple_salesforce", "pydantic",
             "yaml", "structlog", "requests", "syncer.run.pipeline", "syncer.domain.config",
             "syncer.store", "connectors.sandbox.faults", "connectors.sandbox.world"}
    assert not heavy & loaded


def test_the_parser_choices_match_the_library() -> None:
    """Two choice lists are written out in the command modules (so that building the
    parser imports no store and no sandbox); they must stay equal to the library's."""
    from connectors.sandbox.faults import HUBSPOT_TIERS
    from syncer.cli.commands.inspect import EXPORT_FORMATS
    from syncer.cli.commands.sandbox import HUBSPOT_TIER_NAMES
    from syncer.store import audit_archive

    assert EXPORT_FORMATS == audit_archive.EXPORT_FORMATS
    assert tuple(HUBSPOT_TIERS) == HUBSPOT_TIER_NAMES
