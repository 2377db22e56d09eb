"""No secret reaches the log output, whatever a log call passes."""

from __future__ import annotations

import io
import json

import structlog

from syncer.logs import REDACTED, configure_logging

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
