"""Dead letters: the list by cause (what `syncer dead-letters` lists), and for admins retry
or discard one or many.

A retry is `syncer dead-letters retry` (syncer/run/replay.py) for the chosen letters only: a
replay run of its own under the run locks, every write audited. A discard closes the
letters without writing and appends one audit row per field it gives up (outcome
`discarded`, naming the admin), so nothing leaves the list unaccounted for.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from syncer.domain.config import LoadedConfig
from syncer.domain.errors import cause_of
from syncer.domain.failures import SyncerError
from syncer.run.audit_trail import AuditRow, RunStamp, discarded_row
from syncer.run.push import WriteTally
from syncer.run.runtime import OpenRuntime
from syncer.store import dead_letters
from syncer.store.dead_letters import DeadLetter
from syncer.store.repository import Store
from syncer.web.deps import AdminUser, AnyUser, render, web_state

router = APIRouter()
log = structlog.get_logger(__name__)


def by_cause(letters: Sequence[DeadLetter]) -> list[tuple[str, list[DeadLetter]]]:
    groups: dict[str, list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        groups[cause_of(letter.error_code)].append(letter)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _page(request: Request, message: str | None = None, status_code: int = 200) -> Response:
    letters = dead_letters.open_letters(web_state(request).store)
    context = {"page": "dead_letters", "groups": by_cause(letters), "count": len(letters),
               "message": message}
    template = "dead_letters_list.html" if request.headers.get("HX-Request") \
        else "dead_letters.html"
    return render(request, template, context, status_code)


@router.get("/dead-letters")
def dead_letters_page(request: Request, _user: AnyUser) -> Response:
    return _page(request)


async def _ids(request: Request) -> list[int]:
    form = await request.form()
    return sorted({int(v) for v in form.getlist("id") if isinstance(v, str) and v.isdigit()})


@router.post("/dead-letters/retry")
async def retry(request: Request, user: AdminUser) -> Response:
    from starlette.concurrency import run_in_threadpool

    from syncer.store.locks import LockHeld

    ids = await _ids(request)
    state = web_state(request)
    if state.open_runtime is None:
        return _done(request, "nothing retried: this admin was started without connectors", 503)
    try:
        run_id, tally = await run_in_threadpool(retry_letters, state.loaded, state.store, ids,
                                                state.clock(), state.open_runtime)
    except LockHeld as busy:
        return _done(request, f"{busy}; retry once it is done", 409)
    except SyncerError as error:  # a model file that does not validate, a CRM unreachable
        return _done(request, f"nothing retried: {error}", 502)
    written, failed = sum(tally.records_written.values()), sum(tally.failures.values())
    log.info("web.dead_letters_retried", user=user.name, letters=len(ids), run_id=run_id,
             written=written, failed=failed)
    return _done(request, f"replay {run_id}: {written} written, {failed} still failing"
                 + (f", {sum(tally.left_for_sync.values())} left for the next sync"
                    if tally.left_for_sync else ""))


@router.post("/dead-letters/discard")
async def discard(request: Request, user: AdminUser) -> Response:
    ids = await _ids(request)
    state = web_state(request)
    count = discard_letters(state.store, ids, state.clock(), user.name)
    log.info("web.dead_letters_discarded", user=user.name, letters=count)
    return _done(request, f"discarded {count} dead letter{'s' if count != 1 else ''}")


def _done(request: Request, message: str, status_code: int = 200) -> Response:
    if request.headers.get("HX-Request"):
        return _page(request, message, status_code)
    return RedirectResponse("/dead-letters", status_code=303)


def retry_letters(loaded: LoadedConfig, store: Store, ids: Sequence[int], now: datetime,
                  open_runtime: OpenRuntime) -> tuple[str, WriteTally]:
    """Replay the open letters `ids` as `syncer dead-letters retry` replays all of them:
    under the connectors' run locks (LockHeld while a sync runs), writes fenced."""
    from syncer.run.replay import replay_dead_letters

    with open_runtime(loaded, open_store=False) as runtime:
        return replay_dead_letters(loaded, store, runtime.connectors, now, ids=set(ids))


def discard_letters(store: Store, ids: Sequence[int], now: datetime, user: str) -> int:
    """Close the open letters `ids` unwritten, one audit row per field given up."""
    wanted = set(ids)
    letters = [letter for letter in dead_letters.open_letters(store) if letter.id in wanted]
    if not letters:
        return 0
    decisions = store.decisions(sorted({letter.person_key for letter in letters}), scores=False)
    stamp = RunStamp(now, "web-" + uuid.uuid4().hex[:9])
    rows: list[AuditRow] = []
    for letter in letters:
        decision = decisions.get(letter.person_key)
        why = (f"discarded by {user} in the web admin (dead letter #{letter.id}, "
               f"{letter.error_code or 'no error code'})")
        for field, value in sorted(letter.fields.items()):
            rows.append(discarded_row(stamp, letter.connector, letter.record_id,
                                      letter.person_key, field, value, why,
                                      decision.model_version if decision else "-"))
    with store.transaction() as tx:
        for letter in letters:
            dead_letters.resolve(tx, letter.connector, [letter.record_id], now)
        store.append_audit(tx, rows)
    return len(letters)
