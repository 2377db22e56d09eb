"""The HubSpot sandbox's `log_activity` control operation: a rep logs a call, meeting,
email, note or task on a contact, as in HubSpot's UI (connectors/sandbox/control.py).

    POST /_sandbox/log_activity {"id" or "email": the contact, "kind": "call" | "meeting" |
         "email" | "note" | "task", "owner": owner id or email, "subject"?: text}

The engagement is stamped at the sandbox clock's time (hs_timestamp, hs_createdate,
hs_lastmodifieddate) and associated with the contact; the API serves it at once
(connectors/sandbox/hubspot/engagements.py). Companies, deals and `close_deal` are
connectors/sandbox/hubspot/company_controls.py.
"""

from __future__ import annotations

from connectors.sandbox.control import Operation
from connectors.sandbox.hubspot.engagements import TYPES
from connectors.sandbox.hubspot.portal import Portal
from syncer.domain.json_values import JSONObject

#: what each kind of engagement says besides its title (HubSpot's property names)
_DETAILS: dict[str, dict[str, str]] = {
    "calls": {"hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED",
              "hs_call_duration": "300000"},
    "meetings": {"hs_meeting_outcome": "COMPLETED"},
    "emails": {"hs_email_direction": "EMAIL", "hs_email_status": "SENT"},
    "notes": {},
    "tasks": {"hs_task_status": "COMPLETED", "hs_task_type": "TODO"}}


def _contact(sandbox: Portal, body: JSONObject) -> str:
    contact_id = str(body.get("id") or "")
    if contact_id:
        if sandbox.state.snapshot(contact_id) is None:
            raise ValueError(f"id: no contact {contact_id}")
        return contact_id
    if not body.get("email"):
        raise ValueError("give the contact's id or email")
    found = sandbox.state.find("email", str(body["email"]))
    if found is None:
        raise ValueError(f"email: no contact with email {body['email']}")
    return found.id


def _owner(sandbox: Portal, value: object) -> str:
    text = str(value or "").strip()
    for owner in sandbox.state.owners:
        if text and text.lower() in (owner.id, owner.email.lower()):
            return owner.id
    raise ValueError(f"owner: {text or 'nothing'} is no owner of this portal; give an "
                     "owner id or email (GET /crm/v3/owners/ lists them)")


def log_activity(sandbox: Portal, body: JSONObject) -> dict[str, str]:
    kind = str(body.get("kind") or "").lower() + "s"
    if kind not in TYPES:
        raise ValueError(f"kind: {body.get('kind')!r} is not one of call, meeting, email, "
                         "note, task")
    contact, owner = _contact(sandbox, body), _owner(sandbox, body.get("owner"))
    title = TYPES[kind][1]
    properties = {title: str(body.get("subject") or kind[:-1].capitalize()),
                  **_DETAILS[kind]}
    engagement = sandbox.api.engagements.log(kind, contact, owner, properties)
    return {"id": engagement.id, "type": kind, "contact_id": contact, "owner_id": owner}


def engagement_controls(sandbox: Portal) -> dict[str, Operation]:
    return {"log_activity": lambda body: log_activity(sandbox, body)}
