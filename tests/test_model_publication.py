"""Publish and rollback semantics on a bare store (no CRM needed): a rollback goes back to
what was active before the current version, and publishing the active version appends
nothing. Every test asserts on the store: which version is active and the history rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.cli import main
from syncer.domain.config import LoadedConfig, load_config
from syncer.observe.logs import configure_logging
from syncer.run.publication import PublicationError, publish, rollback, version_stack
from syncer.store import model_versions
from syncer.store.model_versions import PUBLISH, ROLLBACK
from syncer.store.repository import Store
from tests.conftest import EXAMPLE_CONFIG, NOW
from tests.test_model_rollback import model_text

Bare = tuple[LoadedConfig, Path, Store]


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bare]:
    monkeypatch.delenv("SYNCER_STATE_URL", raising=False)
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    model = tmp_path / "model.yaml"
    data["state"] = {"url": f"sqlite:///{tmp_path / 'state.db'}"}
    data["model"] = str(model)
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    loaded = load_config(path)
    store = Store.open(loaded.state_url)
    yield loaded, model, store
    store.close()
    configure_logging("info")  # the commands point the logs at the captured stderr


def put(bare: Bare, points: int) -> str:
    """Write the model file with `points` for target industries and publish it; its
    version."""
    loaded, model, store = bare
    model.write_text(model_text(points), encoding="utf-8")
    row, _ = publish(store, loaded, NOW)
    assert row is not None
    return row.version


def rows(store: Store) -> list[tuple[str, str, str | None]]:
    """The history oldest first: (action, version, previous version)."""
    return [(r.action, r.version, r.previous_version)
            for r in reversed(model_versions.history(store))]


def active(store: Store) -> str:
    row = model_versions.active(store)
    assert row is not None
    return row.version


def test_publish_and_a_no_op_publish(bare: Bare) -> None:
    loaded, model, store = bare
    v1 = put(bare, 10)
    assert rows(store) == [(PUBLISH, v1, None)] and active(store) == v1
    # The same file again, and the same rules with only a comment added: no row.
    for text in (model_text(10), model_text(10) + "\n# only a comment\n"):
        model.write_text(text, encoding="utf-8")
        row, before = publish(store, loaded, NOW)
        assert row is None and before is not None and before.version == v1
    assert rows(store) == [(PUBLISH, v1, None)]
    v2 = put(bare, 20)
    assert rows(store) == [(PUBLISH, v1, None), (PUBLISH, v2, v1)] and active(store) == v2


def test_rollback_goes_back_to_what_was_active_before(bare: Bare) -> None:
    _, _, store = bare
    with pytest.raises(PublicationError, match="nothing to roll back to"):
        rollback(store, NOW)
    v1 = put(bare, 10)
    with pytest.raises(PublicationError, match="first published model"):
        rollback(store, NOW)
    v2 = put(bare, 20)
    row = rollback(store, NOW, note="too many MQLs")
    assert (row.action, row.version, row.previous_version, row.note) == \
        (ROLLBACK, v1, v2, "too many MQLs")
    assert active(store) == v1 and row.pins
    assert rows(store)[-1] == (ROLLBACK, v1, v2)


def test_rollback_twice_goes_back_two_versions_then_stops(bare: Bare) -> None:
    _, _, store = bare
    v1, v2, v3 = put(bare, 10), put(bare, 20), put(bare, 30)
    assert rollback(store, NOW).version == v2
    assert rollback(store, NOW).version == v1  # not back to v3, which v2 replaced
    before = rows(store)
    with pytest.raises(PublicationError, match=f"{v1} is the first published model"):
        rollback(store, NOW)
    assert rows(store) == before and active(store) == v1
    assert before[3:] == [(ROLLBACK, v2, v3), (ROLLBACK, v1, v2)]


def test_publish_after_rollback_then_rollback_returns_to_the_restored_version(
        bare: Bare) -> None:
    _, _, store = bare
    v1, v2, _ = put(bare, 10), put(bare, 20), put(bare, 30)
    assert rollback(store, NOW).version == v2  # the third was bad
    v4 = put(bare, 40)
    assert active(store) == v4 and rows(store)[-1] == (PUBLISH, v4, v2)
    assert version_stack(model_versions.history(store)) == [v1, v2, v4]
    assert rollback(store, NOW).version == v2  # never v3, which a rollback undid
    assert rollback(store, NOW).version == v1
    assert active(store) == v1


def test_rollback_after_a_no_op_publish_never_reactivates_the_bad_version(
        bare: Bare) -> None:
    loaded, model, store = bare
    v1, v2 = put(bare, 10), put(bare, 20)
    # A no-op publish of the bad version (the file unchanged) adds nothing ...
    assert publish(store, loaded, NOW)[0] is None
    assert rollback(store, NOW).version == v1  # ... so the rollback still leaves v2
    # The admin reverts the file to v1 and publishes it: already active, nothing appended,
    # and the rollback's pin holds.
    model.write_text(model_text(10), encoding="utf-8")
    row, before = publish(store, loaded, NOW)
    assert row is None and before is not None and before.pins and before.version == v1
    assert rows(store) == [(PUBLISH, v1, None), (PUBLISH, v2, v1), (ROLLBACK, v1, v2)]
    with pytest.raises(PublicationError, match="first published model"):
        rollback(store, NOW)  # v2 is not "before" v1: it was rolled back
    assert active(store) == v1


def test_history_written_by_older_syncers_reads_the_same(bare: Bare) -> None:
    """Older syncers ended a pin with a publish row of the pinned version: that row
    pushes nothing, so a rollback from it does not go back to the bad version."""
    _, _, store = bare
    v1, v2 = put(bare, 10), put(bare, 20)
    rollback(store, NOW)
    with store.transaction() as tx:
        model_versions.append(tx, at=NOW, action=PUBLISH, version=v1, previous_version=v1,
                              content=model_text(10), note=None)
    assert version_stack(model_versions.history(store)) == [v1]
    with pytest.raises(PublicationError, match="first published model"):
        rollback(store, NOW)
    put(bare, 30)
    assert rollback(store, NOW).version == v1
    assert v2 not in version_stack(model_versions.history(store))


def test_rollback_to_a_named_version(bare: Bare) -> None:
    _, _, store = bare
    v1, v2, v3 = put(bare, 10), put(bare, 20), put(bare, 30)
    assert rollback(store, NOW, to=v1).version == v1  # pops v2 and v3
    assert version_stack(model_versions.history(store)) == [v1]
    # A version a rollback undid can be named: it is pushed, and rolling back from it
    # returns to where the history was.
    assert rollback(store, NOW, to=v3.split("@")[1][:6]).version == v3
    assert version_stack(model_versions.history(store)) == [v1, v3]
    assert rollback(store, NOW).version == v1
    assert v2 not in version_stack(model_versions.history(store))


def test_the_commands_say_what_they_did(bare: Bare, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    loaded, model, store = bare
    config = str(loaded.path)
    model.write_text(model_text(10), encoding="utf-8")

    def run(*args: str) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of `syncer model ARGS --config CONFIG`."""
        code = main(["model", *args, "--config", config])
        captured = capsys.readouterr()
        return code, captured.out.strip(), captured.err

    code, out, _ = run("publish")
    v1 = active(store)
    assert code == 0 and out.startswith(f"published {v1} (the first)")
    code, out, _ = run("publish")
    assert (code, out) == (0, f"{v1} (model.yaml) is already the active model; nothing to "
                              "publish")
    model.write_text(model_text(20), encoding="utf-8")
    assert run("publish")[0] == 0
    v2 = active(store)
    code, out, _ = run("rollback")
    assert code == 0 and out.startswith(f"rolled back from {v2} to {v1};")
    assert active(store) == v1
    model.write_text(model_text(10), encoding="utf-8")
    code, out, _ = run("publish")
    assert code == 0 and out.startswith(f"{v1} (model.yaml) is already the active model "
                                        "(rollback #3 still pins it")
    assert out.endswith("nothing to publish") and len(rows(store)) == 3
    code, out, err = run("rollback")
    assert (code, out) == (2, "") and "first published model" in err
    assert active(store) == v1 and len(rows(store)) == 3
