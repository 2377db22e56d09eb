"""Server-side checks of every endpoint: login required, viewers refused every write,
CSRF required on every POST, the login throttle, and what the probe leaves out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from syncer.store import web_users
from tests.web.conftest import ADMIN, PASSWORD, VIEWER, Admin, csrf_of, login

PAGES = ["/", "/runs", "/runs/nope", "/person", "/person?q=someone@example.com", "/audit",
         "/audit?person=x@example.com&since=7d", "/audit/export?format=csv",
         "/audit/export?format=jsonl", "/audit/verify", "/dead-letters", "/model",
         "/model/preview", "/model/backtest", "/funnel"]
WRITES = ["/dead-letters/retry", "/dead-letters/discard", "/model/publish",
          "/model/rollback"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(empty_admin: Admin, path: str) -> None:
    response = empty_admin.client().get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("path", PAGES)
def test_a_viewer_reads_every_page(empty_admin: Admin, path: str) -> None:
    response = empty_admin.client(VIEWER).get(path)
    expected = 404 if path in ("/runs/nope", "/model/backtest",
                               "/person?q=someone@example.com") else 200
    assert response.status_code == expected, response.text[:500]


@pytest.mark.parametrize("path", [*WRITES, "/logout"])
def test_every_write_needs_a_login(empty_admin: Admin, path: str) -> None:
    assert empty_admin.client().post(path, data={"csrf": "x"}).status_code == 401


@pytest.mark.parametrize("path", WRITES)
def test_a_viewer_is_refused_every_write(empty_admin: Admin, path: str) -> None:
    client = empty_admin.client(VIEWER)
    token = csrf_of(client.get("/").text)
    response = client.post(path, data={"csrf": token, "id": "1", "confirm": "yes"})
    assert response.status_code == 403
    assert "is a viewer" in response.text


@pytest.mark.parametrize("path", [*WRITES, "/logout"])
def test_a_post_without_the_csrf_token_is_refused(empty_admin: Admin, path: str) -> None:
    client = empty_admin.client(ADMIN)
    for data in ({}, {"csrf": "forged"}):
        response = client.post(path, data={**data, "id": "1", "confirm": "yes"})
        assert response.status_code == 403
        assert "CSRF" in response.text


def test_the_csrf_header_htmx_sends_is_accepted(empty_admin: Admin) -> None:
    client = empty_admin.client(ADMIN)
    token = csrf_of(client.get("/").text)
    response = client.post("/dead-letters/discard", data={"id": "1"},
                           headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert response.status_code == 200
    assert "discarded 0 dead letters" in response.text


def test_a_login_without_its_form_token_is_refused(empty_admin: Admin) -> None:
    client = empty_admin.client()
    response = client.post("/login", data={"name": ADMIN, "password": PASSWORD})
    assert response.status_code == 403
    assert "syncer_session" not in client.cookies


def test_five_wrong_passwords_throttle_the_account(empty_admin: Admin) -> None:
    client = empty_admin.client()
    assert [login(client, ADMIN, "wrong password!") for _ in range(5)] == [401] * 4 + [429]
    assert login(client, ADMIN) == 429  # the right password too, until the throttle ends
    user = web_users.get_user(empty_admin.store, ADMIN)
    assert user is not None and user.throttled_until is not None
    assert user.throttled_until - timedelta(minutes=15) <= user.throttled_until
    assert login(client, VIEWER) == 303  # other accounts are not affected


def test_the_throttle_ends(empty_admin: Admin) -> None:
    client = empty_admin.client()
    for _ in range(5):
        login(client, ADMIN, "wrong password!")
    state = empty_admin.app.state.web
    later = state.clock() + timedelta(minutes=16)
    state.clock = lambda: later
    assert login(client, ADMIN) == 303


def test_session_cookie_flags_and_logout(empty_admin: Admin) -> None:
    client = empty_admin.client()
    form = client.get("/login")
    response = client.post("/login", data={"name": ADMIN, "password": PASSWORD,
                                           "csrf": csrf_of(form.text), "next": "//evil.test/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie"
                  and v.startswith("syncer_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    client.cookies.clear()
    assert client.get("/").status_code == 303


def test_a_tampered_session_is_no_session(empty_admin: Admin) -> None:
    client = empty_admin.client(ADMIN)
    value = client.cookies["syncer_session"]
    client.cookies.clear()
    client.cookies.set("syncer_session", ("A" if value[0] != "A" else "B") + value[1:])
    assert client.get("/").status_code == 303


def test_the_probe_says_only_ok(empty_admin: Admin) -> None:
    response = empty_admin.client().get("/healthz")
    assert (response.status_code, response.text) == (200, "ok")


def test_static_htmx_is_served_without_login(empty_admin: Admin) -> None:
    response = empty_admin.client().get("/static/htmx.min.js")
    assert response.status_code == 200 and 'version:"2.0.' in response.text


def test_the_session_cookie_is_secure_over_https(empty_admin: Admin) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(empty_admin.app, base_url="https://admin.example", follow_redirects=False)
    form = client.get("/login")
    response = client.post("/login", data={"name": ADMIN, "password": PASSWORD,
                                           "csrf": csrf_of(form.text)})
    cookies = [v for k, v in [*form.headers.multi_items(), *response.headers.multi_items()]
               if k == "set-cookie" and v.startswith(("syncer_login=", "syncer_session="))
               and not v.startswith("syncer_login=\"\"")]  # not the login cookie's removal
    assert len(cookies) == 2 and all("Secure" in cookie for cookie in cookies)
    assert client.get("/").status_code == 200  # the Secure session cookie came back


def test_an_htmx_request_without_a_session_is_sent_to_the_login(empty_admin: Admin) -> None:
    response = empty_admin.client().get("/audit?part=rows", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=%2Faudit")


def test_pages_load_nothing_from_elsewhere(empty_admin: Admin) -> None:
    page = empty_admin.client(ADMIN).get("/").text
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page) == [
        "/static/admin.css", "/static/htmx.min.js"]
    assert "http://" not in page and "https://" not in page
