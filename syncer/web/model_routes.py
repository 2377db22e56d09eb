"""The model page: published versions and the active one, the candidate (the config's
model file, what `syncer model publish` would publish) with a preview of its effect
(`syncer model diff` of the active model against it: syncer/run/preview.py), the backtest
report when one was written beside the model file, and publish / rollback behind a
confirmation that names the effect (syncer/run/publication.py does both, as the commands do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import structlog
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from syncer.domain.types import Stage
from syncer.qualify import Model, ModelError
from syncer.qualify.overview import describe
from syncer.run.preview import ModelDiff, diff_models, reason_changes
from syncer.run.publication import (
    PublicationError,
    publish,
    read_model_file,
    rollback,
    stored_model,
    version_stack,
)
from syncer.store import model_versions
from syncer.web.deps import (
    AdminUser,
    AnyUser,
    WebState,
    render,
    web_state,
)

router = APIRouter()
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Candidate:
    model: Model | None
    problem: str | None


def candidate(state: WebState) -> Candidate:
    try:
        model, _text = read_model_file(state.loaded.model_path)
    except ModelError as error:
        return Candidate(None, str(error))
    return Candidate(model, None)


def backtest_path(state: WebState) -> Path:
    """Where the model page looks for `syncer model backtest --report`'s HTML."""
    return state.loaded.model_path.with_suffix(".backtest.html")


def preview(state: WebState) -> ModelDiff | None:
    """The active model against the candidate over every stored person (reads only);
    None when nothing is published yet or the candidate does not validate."""
    active = model_versions.active(state.store)
    found = candidate(state)
    if active is None or found.model is None:
        return None
    return diff_models(state.store, state.loaded, stored_model(active), found.model,
                       state.clock(), 10)


def rollback_target(state: WebState) -> str | None:
    stack = version_stack(model_versions.history(state.store))
    return stack[-2] if len(stack) >= 2 else None


def _context(state: WebState) -> dict[str, object]:
    history = model_versions.history(state.store, 50)
    found = candidate(state)
    return {"page": "model", "history": history, "active": history[0] if history else None,
            "candidate": found, "described": describe(found.model) if found.model else [],
            "backtest": backtest_path(state).is_file(), "target": rollback_target(state),
            "Stage": Stage}


@router.get("/model")
def model_page(request: Request, _user: AnyUser) -> Response:
    return render(request, "model.html", _context(web_state(request)))


@router.get("/model/preview")
def model_preview(request: Request, _user: AnyUser) -> Response:
    state = web_state(request)
    template = "model_preview.html" if request.headers.get("HX-Request") \
        else "model_preview_page.html"
    return render(request, template, {"page": "model", "diff": preview(state),
                                      "reason_changes": reason_changes, "Stage": Stage})


@router.get("/model/backtest")
def model_backtest(request: Request, _user: AnyUser) -> Response:
    path = backtest_path(web_state(request))
    if not path.is_file():
        raise HTTPException(404, "no backtest report beside the model file")
    return FileResponse(path, media_type="text/html")


@router.post("/model/publish")
def model_publish(request: Request, user: AdminUser, confirm: Annotated[str, Form()] = "",
                  version: Annotated[str, Form()] = "") -> Response:
    state = web_state(request)
    found = candidate(state)
    if found.model is None:
        return _message(request, f"the model file does not validate: {found.problem}", 409)
    if confirm != "yes":
        return render(request, "confirm.html", {
            "page": "model", "action": "/model/publish", "version": found.model.version,
            "verb": "Publish", "diff": preview(state), "Stage": Stage,
            "effect": f"Publishing makes {found.model.version} the active model: the next "
                      "sync re-decides everyone with it and writes the changes to the CRMs."})
    if version != found.model.version:
        return _message(request, "the model file changed since you confirmed; look at the "
                        "new preview and publish again", 409)
    try:
        row, before = publish(state.store, state.loaded, state.clock(),
                              f"published by {user.name} in the web admin")
    except PublicationError as error:
        return _message(request, str(error), 409)
    log.info("web.model_published", user=user.name, version=version,
             previous=before.version if before else None, appended=row is not None)
    return RedirectResponse("/model", status_code=303)


@router.post("/model/rollback")
def model_rollback(request: Request, user: AdminUser, confirm: Annotated[str, Form()] = "",
                   version: Annotated[str, Form()] = "") -> Response:
    state = web_state(request)
    target = rollback_target(state)
    active = model_versions.active(state.store)
    if target is None or active is None:
        return _message(request, "nothing was active before the current model: nothing to "
                        "roll back to", 409)
    if confirm != "yes":
        return render(request, "confirm.html", {
            "page": "model", "action": "/model/rollback", "version": target,
            "verb": "Roll back", "diff": None, "Stage": Stage,
            "effect": f"Rolling back makes {target} active again instead of {active.version}, "
                      "pinned until a changed model file is published: the next sync "
                      "re-decides everyone with it and cites the rollback in the audit log."})
    try:
        row = rollback(state.store, state.clock(), version or target,
                       f"rolled back by {user.name} in the web admin")
    except PublicationError as error:
        return _message(request, str(error), 409)
    log.warning("web.model_rolled_back", user=user.name, version=row.version,
                previous=row.previous_version)
    return RedirectResponse("/model", status_code=303)


def _message(request: Request, message: str, status_code: int) -> Response:
    return render(request, "refused.html", {"page": "model", "message": message}, status_code)
