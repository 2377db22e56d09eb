"""The web admin as one FastAPI application: server-rendered Jinja2 pages, htmx (a vendored
static file) for partial updates, SVG charts drawn on the server. No build step, no CDN:
it works with no network.

`create_app` takes the config and an open store; the pages read through the store API and
the same library code the commands use (syncer/web/*.py say which), so the admin and the
command line never disagree. `syncer web` (syncer/cli/commands/web.py) serves it with uvicorn.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import RequestResponseEndpoint

from syncer.domain.config import LoadedConfig
from syncer.run.runtime import OpenRuntime
from syncer.store.repository import Store
from syncer.web import (
    audit_routes,
    charts,
    dead_letter_routes,
    login,
    model_routes,
    pages,
    person,
)
from syncer.web.auth import Sessions
from syncer.web.deps import LoginRequired, Refused, WebState, render

HERE = Path(__file__).resolve().parent
#: the secret that signs session cookies; unset, each start draws one (everyone logs in
#: again after a restart, and several servers behind one address need it set)
SECRET_ENV = "SYNCER_WEB_SECRET"
log = structlog.get_logger(__name__)


def _templates() -> Jinja2Templates:
    environment = Environment(loader=FileSystemLoader(HERE / "templates"),
                              autoescape=select_autoescape(["html"], default=True))
    environment.filters["when"] = charts.when
    environment.filters["points"] = charts.points
    environment.filters["percent"] = charts.percent
    return Jinja2Templates(env=environment)


def session_secret() -> str:
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) >= 32:
        return secret
    if secret:
        log.warning("web.secret_too_short", fix=f"set {SECRET_ENV} to 32 characters or more")
    return secrets.token_urlsafe(48)


def create_app(loaded: LoadedConfig, store: Store, *, secret: str | None = None,
               clock: Callable[[], datetime] | None = None,
               secure_cookies: bool = False,
               open_runtime: OpenRuntime | None = None) -> FastAPI:
    """The admin over `store` (opened for writing: publishing, retrying and logins write).
    `clock`: the time the pages and the login throttle use (tests pass a fixed one).
    `open_runtime`: the wiring that opens the connectors, for retrying dead letters (the
    command line hands in syncer.cli.runtime.Runtime; without it retries are refused)."""
    app = FastAPI(title="syncer admin", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = WebState(loaded, store, Sessions(secret or session_secret()),
                             _templates(), clock or (lambda: datetime.now(timezone.utc)),
                             secure_cookies, open_runtime)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (login, pages, person, audit_routes, dead_letter_routes, model_routes):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, _error: LoginRequired) -> Response:
        target = "/login?next=" + quote(request.url.path + (
            f"?{request.url.query}" if request.url.query else ""), safe="")
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        if request.method != "GET":
            return HTMLResponse("login required", status_code=401)
        return Response(status_code=303, headers={"Location": target})

    @app.exception_handler(Refused)
    def _refused(request: Request, error: Refused) -> Response:
        log.warning("web.refused", path=request.url.path, reason=error.message[:120])
        if request.headers.get("HX-Request"):
            return HTMLResponse(f'<p class="refused" role="alert">{_escape(error.message)}</p>',
                                status_code=403, headers={"HX-Retarget": "#flash",
                                                          "HX-Reswap": "innerHTML"})
        return render(request, "refused.html", {"message": error.message}, 403)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        """Not found and bad requests as a page of the admin, not a JSON body."""
        return render(request, "refused.html", {"message": str(error.detail),
                                                "title": "Not found"
                                                if error.status_code == 404 else "Not done"},
                      error.status_code)

    @app.middleware("http")
    async def _headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
        if not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
