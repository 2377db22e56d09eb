"""No secret reaches the log output, whatever a log call passes."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest
import structlog

from syncer.cli.runtime import Runtime
from syncer.domain.config import LoadedConfig
from syncer.observe.logs import REDACTED, configure_logging
from syncer.run.pipeline import run_sync
from tests.conftest import NOW

TOKENS = {
    "hubspot": "pat-na1-0f8e2c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
    "salesforce_session": "00D5g000004Xyz1!AQ0AQHf7m2kQ.zR8pT5vN3xW1yB6cD9eF2gH4iJ7kL0mN",
    "password": "Tr0ub4dor&3-correct-horse",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
}


def test_redaction_masks_keys_headers_and_tokens_in_text() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream)
    logger = structlog.get_logger("test")
    logger.info("auth", access_token=TOKENS["hubspot"], password=TOKENS["password"])
    logger.info("request", headers={"Authorization": f"Bearer {TOKENS['bearer']}",
                                    "Accept": "application/json"})
    logger.warning("error", message=f"login failed for session {TOKENS['salesforce_session']} "
                                    f"with password={TOKENS['password']}")
    logger.error("client", detail=f"GET /x token: {TOKENS['hubspot']}")
    output = stream.getvalue()
    for token in TOKENS.values():
        assert token not in output
    events = [json.loads(line) for line in output.splitlines()]
    assert events[0]["access_token"] == REDACTED and events[0]["password"] == REDACTED
    assert events[1]["headers"]["Authorization"] == REDACTED
    assert events[1]["headers"]["Accept"] == "application/json"
    assert "login failed" in events[2]["message"]
    assert [e["event"] for e in events] == ["auth", "request", "error", "client"]


MORE_SECRETS = {
    "webhook": "https://hooks.slack.com/services/T0AAAA1/B0BBBB2/QwErTyUiOp1234567890",
    "database_password": "s3cr3t-DB-pass",
    "basic": "dXNlcjpodW50ZXIyLXBhc3N3b3Jk",
    "refresh": "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJvtR0Ly",
}


def test_redaction_covers_urls_basic_auth_exceptions_and_bound_context() -> None:
    stream = io.StringIO()
    configure_logging("debug", stream)
    logger = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(session_id=TOKENS["salesforce_session"]):
        logger.info("bound")
    logger.info("alert", webhook_url=MORE_SECRETS["webhook"],
                detail=f"posting to {MORE_SECRETS['webhook']}")
    logger.info("store", url=f"postgresql+psycopg://syncer:{MORE_SECRETS['database_password']}"
                             "@db.internal:5432/syncer")
    logger.info("request", headers=[("Authorization", f"Basic {MORE_SECRETS['basic']}")],
                text=f"Authorization: Basic {MORE_SECRETS['basic']}")
    logger.info("oauth", body=f"grant_type=refresh_token&refresh_token={MORE_SECRETS['refresh']}"
                              f"&client_secret={TOKENS['password']}")
    logger.info("jwt", detail=f"assertion {TOKENS['bearer']} rejected")
    try:
        raise RuntimeError(f"login failed: Authorization: Bearer {TOKENS['bearer']}")
    except RuntimeError:
        logger.exception("crash")
    output = stream.getvalue()
    for secret in (*TOKENS.values(), *MORE_SECRETS.values()):
        assert secret not in output, secret
    events = {e["event"]: e for e in map(json.loads, output.splitlines())}
    assert events["store"]["url"] == f"postgresql+psycopg://syncer:{REDACTED}@db.internal:5432/syncer"
    assert "RuntimeError: login failed" in events["crash"]["exception"]


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_every_event_of_a_run_carries_its_run_id_and_connector(
        sandbox_config: LoadedConfig) -> None:
    stream = io.StringIO()
    with Runtime(sandbox_config) as runtime:  # (opening it publishes the model: not a run)
        configure_logging("debug", stream)
        single = run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                          runtime.model, NOW, only=["hubspot"])
        structlog.get_logger("test").info("between")
        both = run_sync(sandbox_config, runtime.require_store(), runtime.connectors,
                        runtime.model, NOW)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    between = next(i for i, e in enumerate(events) if e["event"] == "between")
    first, second = events[:between], events[between + 1:]
    assert len(first) > 3 and {e["event"] for e in first} >= {"pull.done", "push.batch",
                                                               "push.done", "sync.done"}
    # A run of one connector binds it for the whole run; pushes to the other CRM the same
    # people live in are bound to that CRM while they last.
    assert all(e.get("run_id") == single.run_id and e.get("connector") in
               ("hubspot", "salesforce") for e in first)
    assert [e["connector"] for e in first if e["event"] in ("pull.done", "sync.done")] == \
        ["hubspot", "hubspot"]
    assert "run_id" not in events[between] and "connector" not in events[between]
    assert all(e.get("run_id") == both.run_id for e in second)
    assert all(e.get("connector") in ("hubspot", "salesforce")
               for e in second if e["event"] != "sync.done")
    assert {e["connector"] for e in second if e["event"] == "pull.done"} == \
        {"hubspot", "salesforce"}
    output = stream.getvalue()
    for name in ("hubspot", "salesforce"):  # the real credentials of both sandboxes
        for secret in sandbox_config_secrets(sandbox_config, name):
            assert secret not in output


def sandbox_config_secrets(loaded: LoadedConfig, name: str) -> list[str]:
    return [os.environ[ref.env] for ref in loaded.connector(name).credentials.values()
            if ref.env]


def test_lines_go_to_the_current_stderr_not_the_one_at_configure_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A command configures logging on sys.stderr; whoever replaces sys.stderr later (a
    test runner's capture that is then closed, a daemon's redirection) gets the lines,
    and no line is written to the closed stream."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("info", sys.stderr)
    monkeypatch.setattr(sys, "stderr", second)
    first.close()
    structlog.get_logger().info("after.the.swap", connector="hubspot")
    assert '"event": "after.the.swap"' in second.getvalue()
