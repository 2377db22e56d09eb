"""`syncer user add` and `syncer web`'s refusals; the schema step that adds accounts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from syncer.cli import main
from syncer.store import web_users
from syncer.store.migrations import LATEST
from syncer.store.repository import Store
from syncer.web.auth import password_matches


def _add(url: str, name: str, role: str, password: str,
         monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["user", "add", name, "--role", role, "--password-stdin", "--state", url])


def test_user_add_hashes_the_password_and_refuses_a_taken_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert _add(url, "ada", "admin", "a long passphrase", monkeypatch) == 0
    assert "web user ada added (admin)" in capsys.readouterr().out
    store = Store.open(url)
    try:
        user = web_users.get_user(store, "ada")
        assert user is not None and user.is_admin
        assert user.password_hash.startswith("$argon2")
        assert "a long passphrase" not in user.password_hash
        assert password_matches(user.password_hash, "a long passphrase")
        assert not password_matches(user.password_hash, "a long passphrasE")
    finally:
        store.close()
    assert _add(url, "ada", "viewer", "another passphrase", monkeypatch) == 2
    assert "exists already" in capsys.readouterr().err
    assert _add(url, "bob", "viewer", "short", monkeypatch) == 2
    assert "use 10 or more" in capsys.readouterr().err
    assert _add(url, "bad name", "viewer", "a long passphrase", monkeypatch) == 2


def test_web_binds_beyond_loopback_only_when_told(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert main(["web", "--host", "0.0.0.0", "--state", url]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_an_older_state_gains_the_accounts_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = Store.open(url)
    with store.engine.begin() as connection:
        connection.execute(text("DROP TABLE web_users"))
        connection.execute(text("DELETE FROM schema_version"))
        connection.execute(text("INSERT INTO schema_version VALUES (6, '2026-11-01')"))
    store.close()
    store = Store.open(url)
    try:
        assert inspect(store.engine).has_table("web_users")
        assert web_users.user_count(store) == 0
        assert LATEST >= 7  # schema 7 added the table; later steps may follow it
    finally:
        store.close()


def test_accounts_and_the_throttle_on_each_backend(state_url: str) -> None:
    """web_users on SQLite and PostgreSQL: created by the migration, counted, throttled."""
    from datetime import datetime, timedelta, timezone

    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    store = Store.open(state_url)
    try:
        web_users.add_user(store, "ada", "admin", "$argon2id$not-a-real-hash", now)
        with pytest.raises(web_users.UserExists):
            web_users.add_user(store, "ada", "viewer", "$argon2id$x", now)
        for _ in range(4):
            web_users.record_failure(store, "ada", now, 5, timedelta(minutes=15))
        user = web_users.get_user(store, "ada")
        assert user is not None and user.failed_logins == 4 and not user.throttled(now)
        web_users.record_failure(store, "ada", now, 5, timedelta(minutes=15))
        user = web_users.get_user(store, "ada")
        assert user is not None and user.throttled(now + timedelta(minutes=14))
        assert not user.throttled(now + timedelta(minutes=15))
        web_users.clear_failures(store, "ada")
        assert web_users.get_user(store, "ada") == web_users.WebUser(
            "ada", "admin", "$argon2id$not-a-real-hash", 0, None)
    finally:
        store.close()
