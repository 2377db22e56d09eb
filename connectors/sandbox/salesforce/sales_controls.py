"""The Salesforce sandbox's sales operations in the control API: what a rep does by hand.

    POST /_sandbox/log_activity {"id": Lead or Contact id, "kind": "call" | "email" |
         "meeting" | "task", "owner": User id or email, "subject"?: text,
         "duration_minutes"?: n}
         a call, an email or a task is a Task (Type Call/Email/Other, TaskSubtype Call/
         Email/Task, Status Completed); a meeting is an Event (ActivityDateTime now)
    POST /_sandbox/close_deal {"id": Contact id or converted Lead id, "won": true|false,
         "owner"?: User id or email, "name"?: text, "amount"?: n}
         an Opportunity with that primary ContactId (a converted Lead's Contact), its
         Account, StageName "Closed Won" / "Closed Lost", CloseDate today

Both insert through the same validation as the REST API (connectors/sandbox/salesforce/
inserts.py), stamped at the sandbox clock's time, so what they make is what a rep's UI
would: a refused value answers 400 with Salesforce's error.
"""

from __future__ import annotations

from connectors.sandbox.control import Operation
from connectors.sandbox.salesforce.field_rules import RecordRejected, RequestRejected
from connectors.sandbox.salesforce.hands import OrgHands
from connectors.sandbox.salesforce.inserts import prepare_insert
from connectors.sandbox.salesforce.rows import text
from connectors.sandbox.salesforce.schema import EVENT, OPPORTUNITY, TASK, ObjectSchema
from syncer.domain.json_values import JSONObject, JSONValue, text_or_none

#: kind -> (Task Type, TaskSubtype); "meeting" is an Event instead
TASK_KINDS: dict[str, tuple[str, str]] = {"call": ("Call", "Call"), "email": ("Email", "Email"),
                                          "task": ("Other", "Task")}
KINDS = (*TASK_KINDS, "meeting")


def _scalar(body: JSONObject, key: str) -> str | int | float | None:
    """A field of the body that must be a number or text (None when absent)."""
    value = body.get(key)
    if isinstance(value, (list, dict)):
        raise ValueError(f"{key}: give a number, not a JSON {type(value).__name__}")
    return value


def _owner(sandbox: OrgHands, value: object) -> str:
    """A User id from an id or an email; ValueError naming the field otherwise."""
    text = str(value or "").strip()
    if not text:
        raise ValueError("owner: give the User id (005...) or email of the rep")
    if "@" not in text:
        return text
    for user in sandbox.org.rows("User"):
        if str(user.get("Email") or "").lower() == text.lower():
            return str(user["Id"])
    raise ValueError(f"owner: no User with email {text}")


def _insert(sandbox: OrgHands, schema: ObjectSchema, values: dict[str, JSONValue]) -> str:
    with sandbox.org.lock:
        try:
            staged = prepare_insert(sandbox.org, schema, values)
        except RecordRejected as refused:
            raise ValueError("; ".join(f"{e.status_code}: {e.message}"
                                       for e in refused.errors)) from None
        except RequestRejected as refused:
            raise ValueError(str(refused)) from None
        return text(sandbox.org.apply(staged, sandbox.clock()), "Id")


def log_activity(sandbox: OrgHands, body: JSONObject) -> dict[str, str]:
    kind = str(body.get("kind") or "").lower()
    if kind not in KINDS:
        raise ValueError(f"kind: {body.get('kind')!r} is not one of {', '.join(KINDS)}")
    who, owner = str(body["id"]), _owner(sandbox, body.get("owner"))
    subject = str(body.get("subject") or kind.capitalize())
    if kind == "meeting":
        values: dict[str, JSONValue] = {
            "WhoId": who, "OwnerId": owner, "Subject": subject, "Type": "Meeting",
            "ActivityDateTime": sandbox.now().isoformat(),
            "DurationInMinutes": int(_scalar(body, "duration_minutes") or 30)}
        return {"id": _insert(sandbox, EVENT, values), "type": "Event"}
    task_type, subtype = TASK_KINDS[kind]
    values = {"WhoId": who, "OwnerId": owner, "Subject": subject, "Type": task_type,
              "TaskSubtype": subtype, "Status": "Completed",
              "ActivityDate": sandbox.now().date().isoformat()}
    minutes = _scalar(body, "duration_minutes")
    if minutes is not None:
        values["CallDurationInSeconds"] = int(minutes) * 60
    return {"id": _insert(sandbox, TASK, values), "type": "Task"}


def close_deal(sandbox: OrgHands, body: JSONObject) -> dict[str, object]:
    person = sandbox.org.rendered(str(body["id"]))
    if person["type"] == "Lead":
        if not person.get("ConvertedContactId"):
            raise ValueError(f"id: Lead {body['id']} is not converted; convert it first "
                             "(POST /_sandbox/convert): an Opportunity needs a Contact")
        person = sandbox.org.rendered(str(person["ConvertedContactId"]))
    if person["type"] != "Contact":
        raise ValueError(f"id: {body['id']} is a {person['type']}, not a Contact or Lead")
    won = body.get("won", True)
    if not isinstance(won, bool):
        raise ValueError("won: true (Closed Won) or false (Closed Lost)")
    values: dict[str, JSONValue] = {
        "Name": str(body.get("name") or f"{person.get('Name') or person['Id']} deal"),
        "StageName": "Closed Won" if won else "Closed Lost",
        "CloseDate": sandbox.now().date().isoformat(), "ContactId": str(person["Id"]),
        "AccountId": text_or_none(person, "AccountId"),
        "OwnerId": _owner(sandbox, body.get("owner") or person.get("OwnerId"))}
    amount = _scalar(body, "amount")
    if amount is not None:
        values["Amount"] = float(amount)
    return {"id": _insert(sandbox, OPPORTUNITY, values), "contact_id": person["Id"],
            "stage": values["StageName"]}


def sales_controls(sandbox: OrgHands) -> dict[str, Operation]:
    """The control API's sales operations (connectors/sandbox/control.py)."""
    return {"log_activity": lambda body: log_activity(sandbox, body),
            "close_deal": lambda body: close_deal(sandbox, body)}
