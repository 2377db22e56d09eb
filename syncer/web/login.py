"""Logging in and out, and the one unauthenticated probe (/healthz: ok or not ok)."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from syncer.ops.health import check_health
from syncer.store import web_users
from syncer.store.web_users import WebUser
from syncer.web.auth import (
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    MAX_FAILED_LOGINS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    THROTTLE,
    password_matches,
    same_token,
)
from syncer.web.deps import CsrfUser, Refused, render, web_state

router = APIRouter()
log = structlog.get_logger(__name__)


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this site only (never //host or a URL)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _secure(request: Request) -> bool:
    return web_state(request).secure_cookies or request.url.scheme == "https"


def login_page(request: Request, next_path: str = "/", message: str | None = None,
               status_code: int = 200) -> Response:
    cookie, token = web_state(request).sessions.login_form()
    response = render(request, "login.html", {"login_token": token, "next": safe_next(next_path),
                                              "message": message}, status_code)
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_FORM_SECONDS, httponly=True,
                        samesite="lax", secure=_secure(request), path="/login")
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return login_page(request, next)


@router.post("/login")
def login(request: Request, name: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    state = web_state(request)
    expected = state.sessions.login_token(request.cookies.get(LOGIN_COOKIE))
    if expected is None or not same_token(csrf, expected):
        raise Refused("the login form's security token is missing or out of date (CSRF). "
                      "Fix: reload the login page and try again")
    now = state.clock()
    user = web_users.get_user(state.store, name.strip())
    if user is not None and user.throttled(now):
        return _throttled(request, next, user)
    if user is None or not password_matches(user.password_hash, password):
        if user is not None:
            web_users.record_failure(state.store, user.name, now, MAX_FAILED_LOGINS, THROTTLE)
            user = web_users.get_user(state.store, user.name)
        log.warning("web.login_failed", user=name[:80], known=user is not None)
        if user is not None and user.throttled(now):
            return _throttled(request, next, user)
        return login_page(request, next, "Wrong name or password.", 401)
    web_users.clear_failures(state.store, user.name)
    cookie, _session = state.sessions.issue(user.name)
    log.info("web.login", user=user.name, role=user.role)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _throttled(request: Request, next_path: str, user: WebUser) -> Response:
    until = user.throttled_until
    when = f"{until:%H:%M} UTC" if until else "a while"
    return login_page(request, next_path, f"Too many wrong passwords: this account is locked "
                      f"until {when}. Fix: wait, or ask an admin", 429)


@router.post("/logout")
def logout(user: CsrfUser) -> Response:
    log.info("web.logout", user=user.name)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """ok when the state database answers; nothing else (no host, no port, no version)."""
    if not check_health(web_state(request).store, []).ready:
        return PlainTextResponse("not ok", status_code=503)
    return PlainTextResponse("ok")
