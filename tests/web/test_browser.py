"""The admin in a real browser (the system's Chromium driven by playwright): the flows an
admin goes through. A missing browser fails these tests; it does not skip them (.ci/run
installs Debian's chromium). Every assertion waits on the page (expect), never on a clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from syncer.cli import main
from syncer.domain.types import Stage
from syncer.store import dead_letters
from tests.conftest import NOW, Sandboxes, sync_once
from tests.sandbox_control import control
from tests.web.conftest import (
    ADMIN,
    PASSWORD,
    VIEWER,
    Admin,
    build_admin,
    sandbox_web_config,
    serve,
)

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
#: how long a locator waits for the page (a ceiling, not a sleep: it returns as soon as the
#: page matches); generous for a suite sharing two cores with sandboxes and syncs
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"no browser at {CHROMIUM}: the browser tests need Debian's chromium "
                    "(`apt-get install -y chromium`; .ci/run installs it)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def synced(sandboxes: Sandboxes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Admin]:
    """The admin over a state the sandboxes' people were not synced into yet."""
    admin = build_admin(sandbox_web_config(sandboxes, tmp_path, monkeypatch))
    yield admin
    admin.store.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def log_in(page: Page, url: str | None, user: str, password: str = PASSWORD) -> None:
    """Fill the login form (of `url`/login, or the one on the page when url is None)."""
    if url is not None:
        page.goto(url + "/login")
    page.get_by_label("Name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_log_in_see_a_run_appear_and_read_the_reasons_explain_prints(
        synced: Admin, sandboxes: Sandboxes, page: Page,
        capsys: pytest.CaptureFixture[str]) -> None:
    with serve(synced.app) as url:
        page.goto(url + "/runs")
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fruns$"))
        log_in(page, None, ADMIN)  # and back to the page asked for
        expect(page.get_by_test_id("who")).to_have_text(f"{ADMIN} (admin)")
        expect(page.get_by_test_id("runs")).to_contain_text("No runs recorded yet")

        summary = sync_once(synced.loaded)
        page.reload()
        expect(page.get_by_role("link", name=summary.run_id)).to_be_visible()
        page.get_by_role("link", name=summary.run_id).click()
        expect(page.get_by_test_id("run-status")).to_have_text("succeeded")

        decisions = synced.store.decisions(synced.store.person_keys())
        email = next(key for key, d in sorted(decisions.items())
                     if d.stage is Stage.MQL and len(d.reasons) > 2)
        capsys.readouterr()  # the sync's log lines
        assert main(["explain", email, "--json", "--state", synced.loaded.state_url]) == 0
        explained = json.loads(capsys.readouterr().out)
        page.get_by_role("link", name="Person", exact=True).click()
        page.get_by_label("Email or CRM record id").fill(email.upper())
        page.get_by_role("button", name="Find").click()
        expect(page.get_by_test_id("person-key")).to_have_text(email)
        expect(page.get_by_test_id("stage")).to_have_text(explained["stage"])
        expect(page.get_by_test_id("score")).to_have_text(str(explained["score"]))
        reasons = page.get_by_test_id("reasons")
        expect(reasons.locator("td.rule")).to_have_text(
            [r["rule_id"] for r in explained["reasons"]])
        expect(reasons.locator("td.num")).to_have_text(
            [f"{r['points']:+.2f}" for r in explained["reasons"]])
        expect(reasons.locator("td.detail")).to_have_text(
            [r["detail"] for r in explained["reasons"]])


def test_retry_a_dead_letter_it_leaves_the_list_and_its_write_is_audited(
        synced: Admin, sandboxes: Sandboxes, page: Page) -> None:
    leads = [r for r in sandboxes.salesforce.records() if r["type"] == "Lead"][:2]
    control(sandboxes.salesforce, "lock_rows", ids=[r["Id"] for r in leads])
    assert sync_once(synced.loaded).failures["salesforce"] == 2
    control(sandboxes.salesforce, "unlock_rows", ids=[r["Id"] for r in leads])
    letter = dead_letters.open_letters(synced.store)[0]
    with serve(synced.app) as url:
        log_in(page, url, ADMIN)
        page.get_by_role("link", name="Dead letters", exact=True).click()
        expect(page.get_by_test_id("letters-count")).to_have_text("2 open dead letters")
        page.get_by_label(f"select letter {letter.id}").check()
        page.get_by_test_id("retry").click()
        expect(page.get_by_test_id("letters-message")).to_contain_text("1 written, 0 still")
        expect(page.get_by_test_id("letters-count")).to_have_text("1 open dead letter")
        expect(page.get_by_test_id(f"letter-{letter.id}")).to_have_count(0)

        page.goto(f"{url}/audit?person={letter.record_id}&outcome=written")
        rows = page.get_by_test_id("audit-table").locator("tbody tr:not(#more)")
        expect(rows.first).to_contain_text("replay-")
        expect(rows.first).to_contain_text(letter.record_id)

        page.goto(url + "/audit")  # htmx: older pages append; the chain verifies
        rows = page.get_by_test_id("audit-table").locator("tbody tr:not(#more)")
        expect(rows).to_have_count(50)
        page.get_by_test_id("older").click()
        expect(rows).to_have_count(100)
        page.get_by_test_id("verify").click()
        expect(page.get_by_test_id("chain-status")).to_have_text("chain OK")


def test_preview_a_candidate_publish_it_then_roll_back(
        synced: Admin, page: Page) -> None:
    sync_once(synced.loaded)  # publishes the model file: the first version
    first = synced.loaded.model_path.read_text()
    synced.loaded.model_path.write_text(first.replace("mql_score: 25", "mql_score: 15"))
    with serve(synced.app) as url:
        log_in(page, url, ADMIN)
        page.get_by_role("link", name="Model", exact=True).click()
        old = page.get_by_test_id("active-version").inner_text()
        new = page.get_by_test_id("candidate-version").inner_text()
        assert old != new
        page.get_by_test_id("preview").click()
        expect(page.get_by_test_id("diff")).to_contain_text(f"{old} → {new}")
        expect(page.get_by_test_id("mql-volume")).to_contain_text("MQL: ")

        page.get_by_test_id("publish").click()
        expect(page.get_by_test_id("effect")).to_contain_text(f"makes {new} the active model")
        page.get_by_test_id("confirm").click()
        expect(page.get_by_test_id("active-version")).to_have_text(new)

        page.get_by_test_id("rollback").click()
        expect(page.get_by_test_id("effect")).to_contain_text(
            f"makes {old} active again instead of {new}")
        page.get_by_test_id("confirm").click()
        expect(page.get_by_test_id("active-version")).to_have_text(old)
        expect(page.get_by_test_id("history").locator("tbody tr").first).to_contain_text(
            f"rolled back by {ADMIN} in the web admin")


def test_a_viewer_is_refused_every_write_in_the_page_and_on_a_direct_post(
        synced: Admin, page: Page) -> None:
    with serve(synced.app) as url:
        log_in(page, url, VIEWER)
        expect(page.get_by_test_id("who")).to_have_text(f"{VIEWER} (viewer)")
        page.get_by_role("link", name="Model", exact=True).click()
        expect(page.get_by_test_id("viewer-note")).to_be_visible()
        expect(page.get_by_test_id("publish")).to_have_count(0)
        token = page.locator("input[name=csrf]").first.get_attribute("value")
        for path in ("/model/publish", "/model/rollback", "/dead-letters/retry",
                     "/dead-letters/discard"):
            response = page.request.post(url + path, form={"csrf": token or "",
                                                           "confirm": "yes", "id": "1"})
            assert response.status == 403, path
            assert "is a viewer" in response.text()


def test_a_post_without_the_csrf_token_is_refused(synced: Admin, page: Page) -> None:
    with serve(synced.app) as url:
        log_in(page, url, ADMIN)
        expect(page.get_by_test_id("who")).to_have_text(f"{ADMIN} (admin)")
        response = page.request.post(url + "/model/publish", form={"confirm": "yes"})
        assert response.status == 403 and "CSRF" in response.text()
        page.set_content(f'<form method="post" action="{url}/dead-letters/discard">'
                         '<input name="id" value="1"><button>go</button></form>')
        page.get_by_role("button", name="go").click()
        expect(page.get_by_test_id("refused")).to_contain_text("CSRF")

        # htmx's request with a token that is not the session's: refused, and said so
        with synced.store.transaction() as tx:
            dead_letters.park(tx, [{"connector": "salesforce", "record_id": "00Q1",
                                    "object_type": "Lead", "person_key": "p@example.com",
                                    "fields": {"Syncer_Score__c": "40"}, "error_code": "X",
                                    "message": "no"}], NOW, "run1")
        page.goto(url + "/dead-letters")
        page.evaluate("""() => {
            document.body.setAttribute('hx-headers', '{"X-CSRF-Token": "forged"}');
            document.querySelector('#letters-form input[name=csrf]').remove(); }""")
        page.get_by_label("select letter 1").check()
        page.get_by_test_id("discard").click()  # hx-confirm: playwright dismisses dialogs
        page.get_by_test_id("retry").click()
        expect(page.locator("#flash")).to_contain_text("CSRF")
        expect(page.get_by_test_id("letters-count")).to_have_text("1 open dead letter")


def test_five_wrong_passwords_throttle_the_login(synced: Admin, page: Page) -> None:
    with serve(synced.app) as url:
        for attempt in range(1, 6):
            log_in(page, url, ADMIN, "not the password")
            expect(page.get_by_test_id("login-message")).to_have_text(
                "Wrong name or password." if attempt < 5 else re.compile("Too many wrong"))
        log_in(page, url, ADMIN)
        expect(page.get_by_test_id("login-message")).to_contain_text("Too many wrong")
        expect(page.get_by_test_id("who")).to_have_count(0)
