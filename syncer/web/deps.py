"""What every page shares: the server's state, the logged-in user, write access, rendering.

Pages take `current_user` (any role) or `write_access` (an admin, with the session's CSRF
token) as a FastAPI dependency, so no route can forget either check: a route without one
is visibly public (only /login, /healthz and /static are).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from syncer.domain.config import LoadedConfig
from syncer.run.runtime import OpenRuntime
from syncer.store import web_users
from syncer.store.repository import Store
from syncer.store.web_users import WebUser
from syncer.web.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Sessions, same_token


class LoginRequired(Exception):
    """No valid session: the page answers with the login form (or HX-Redirect to it)."""


class Refused(Exception):
    """A request the user may not make (403): a viewer's write, a missing CSRF token."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class WebState:
    loaded: LoadedConfig
    store: Store
    sessions: Sessions
    templates: Jinja2Templates
    clock: Callable[[], datetime]
    #: set the Secure flag on cookies even when the request did not come over https
    secure_cookies: bool = False
    #: the wiring that opens connectors (a retry writes to the CRMs); None: retries refused
    open_runtime: OpenRuntime | None = None


def web_state(request: Request) -> WebState:
    return cast(WebState, request.app.state.web)


def current_user(request: Request) -> WebUser:
    """The logged-in user (LoginRequired otherwise); their CSRF token goes on
    request.state for the templates."""
    state = web_state(request)
    session = state.sessions.read(request.cookies.get(SESSION_COOKIE))
    user = web_users.get_user(state.store, session.user) if session else None
    if session is None or user is None:
        raise LoginRequired()
    request.state.user = user
    request.state.csrf = session.csrf
    return user


#: a route parameter that requires a logged-in user of any role
AnyUser = Annotated[WebUser, Depends(current_user)]


async def csrf_checked(request: Request, user: AnyUser) -> WebUser:
    """A logged-in user (any role) whose POST carries the session's CSRF token (Refused without)."""
    form = await request.form()
    token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not same_token(token if isinstance(token, str) else None, request.state.csrf):
        raise Refused("the form's security token is missing or out of date (CSRF). Fix: "
                      "reload the page and try again")
    return user


#: a POST parameter that requires a logged-in user and the session's CSRF token
CsrfUser = Annotated[WebUser, Depends(csrf_checked)]


def write_access(user: CsrfUser) -> WebUser:
    """An admin, with the CSRF token checked: every state-changing route takes this."""
    if not user.is_admin:
        raise Refused(f"{user.name} is a viewer: only an admin may change anything. Fix: "
                      "ask an admin (accounts: `syncer user add NAME --role admin`)")
    return user


#: every state-changing route's parameter: an admin, CSRF token checked
AdminUser = Annotated[WebUser, Depends(write_access)]


def render(request: Request, template: str, context: Mapping[str, object] | None = None,
           status_code: int = 200) -> HTMLResponse:
    state = web_state(request)
    values = {"user": getattr(request.state, "user", None),
              "csrf": getattr(request.state, "csrf", ""), **(context or {})}
    return state.templates.TemplateResponse(request, template, values,
                                            status_code=status_code)
