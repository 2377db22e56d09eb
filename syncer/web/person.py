"""The person page: search by email or CRM record id; the decision with every reason and
score ledger exactly as `syncer explain --json` gives them (the same function builds both),
stage history, owner and why, the person's CRM records, and their audit rows."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from syncer.domain.config import LoadedConfig
from syncer.domain.types import Person
from syncer.qualify.explain import explain_json
from syncer.store import identity as identity_store
from syncer.store import routing, stage_history
from syncer.store.audit import AuditFilter
from syncer.store.audit_pages import audit_page
from syncer.store.repository import Store
from syncer.web.deps import AnyUser, render, web_state

router = APIRouter()


def person_key(store: Store, loaded: LoadedConfig, query: str) -> str | None:
    """The person an email or a record id (of any connector) belongs to."""
    value = query.strip()
    if not value:
        return None
    if "@" in value:
        return store.person_key_for_email(value) or value.lower()
    for connector in loaded.config.connectors:
        keys = store.person_keys_of(connector.name, [value])
        if keys:
            return sorted(keys)[0]
    return None


def record_link(loaded: LoadedConfig, record: Person) -> str | None:
    """Where a rep opens the record: a Salesforce record under the org's address. HubSpot
    record pages need the portal id, which the config does not hold: no link there."""
    try:
        connector = loaded.connector(record.source)
    except (KeyError, ValueError):
        return None
    if connector.kind == "salesforce" and connector.base_url:
        return f"{connector.base_url.rstrip('/')}/{record.record_id}"
    return None


@router.get("/person")
def person(request: Request, _user: AnyUser, q: str = "") -> Response:
    state = web_state(request)
    store, loaded = state.store, state.loaded
    key = person_key(store, loaded, q)
    decision = store.decisions([key]).get(key) if key else None
    context: dict[str, object] = {"page": "person", "q": q, "key": key, "found": False}
    if key is None or decision is None:
        return render(request, "person.html", context, 404 if q.strip() else 200)
    records, activities = store.load_people([key])[key]
    with store.engine.connect() as connection:
        retired = identity_store.retired_records(connection, key)
    owner = [row for row in routing.assignment_rows(store) if row["person_key"] == key]
    context.update({
        "found": True, "explain": explain_json(decision, records, len(activities)),
        "records": [(record, record_link(loaded, record)) for record in records],
        "retired": retired, "history": stage_history.history(store, key),
        "assignments": owner[-5:],
        "audit": audit_page(store.audit_log, AuditFilter(person_key=key), limit=50)})
    return render(request, "person.html", context)
