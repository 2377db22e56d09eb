"""The Salesforce sandbox's account operations in the control API: what a rep does to
Accounts by hand, so a tester drives a running `syncer sandbox` over HTTP (issue 20).

    POST /_sandbox/create_account {"name": text, "website"?: url, "industry"?: text,
         "employees"?: n, "country"?: text, "annual_revenue"?: n,
         "owner"?: User id or email, "fields"?: {API name: value}}
         an Account (the owner defaults to the API user); answers its id and record
    POST /_sandbox/edit_account {"id": Account id, "fields": {API name: value, ...}}
         one edit of those fields, as the Account page's save does; answers the record
    POST /_sandbox/set_account {"id": Contact id, "account_id": Account id or null}
         moves the Contact under that Account (or none); answers the Contact

Every write goes through the REST API's validation (inserts.py, org.prepare), stamped at
the sandbox clock's time: a refused value answers 400 with Salesforce's error, naming the
field.
"""

from __future__ import annotations

from connectors.sandbox.control import Operation
from connectors.sandbox.salesforce.field_rules import RecordRejected, RequestRejected
from connectors.sandbox.salesforce.hands import OrgHands
from connectors.sandbox.salesforce.sales_controls import _insert, _owner
from connectors.sandbox.salesforce.schema import ACCOUNT, CONTACT, ObjectSchema
from syncer.domain.json_values import JSONObject, JSONValue, as_object

#: create_account's short names -> the Account field each sets
SHORT_NAMES = {"name": "Name", "website": "Website", "industry": "Industry",
               "employees": "NumberOfEmployees", "country": "BillingCountry",
               "annual_revenue": "AnnualRevenue"}


def _fields(body: JSONObject) -> JSONObject:
    """The body's `fields` object ({} when absent); ValueError naming it otherwise."""
    value = body.get("fields", {})
    try:
        return as_object(value, "fields")
    except TypeError as error:
        raise ValueError(f"{error}: give {{\"FieldApiName\": value, ...}}") from None


def create_account(sandbox: OrgHands, body: JSONObject) -> dict[str, object]:
    values: dict[str, JSONValue] = {field: body[short] for short, field in SHORT_NAMES.items()
                                    if body.get(short) is not None}
    if not str(values.get("Name") or "").strip():
        raise ValueError("name: an Account needs a name")
    values.update(_fields(body))
    if body.get("owner") is not None:
        values["OwnerId"] = _owner(sandbox, body["owner"])
    account_id = _insert(sandbox, ACCOUNT, dict(values))
    return {"id": account_id, "record": sandbox.record(account_id)}


def _edit(sandbox: OrgHands, schema: ObjectSchema, record_id: str,
          values: JSONObject) -> dict[str, object]:
    """One write of `values` to a record of `schema`, as its page's save would do it."""
    with sandbox.org.lock:
        found = sandbox.org.lookup(record_id)
        if found is None or found[0] is not schema:
            raise ValueError(f"id: {record_id} is no {schema.name} of this org")
        try:
            staged = sandbox.org.prepare(schema, record_id, dict(values), check_lock=False)
        except RecordRejected as refused:
            raise ValueError("; ".join(f"{e.status_code}: {e.message} ({', '.join(e.fields)})"
                                       for e in refused.errors)) from None
        except RequestRejected as refused:
            raise ValueError(f"{refused.error_code}: {refused.message}") from None
        sandbox.org.apply(staged, sandbox.clock())
    return sandbox.record(record_id)


def edit_account(sandbox: OrgHands, body: JSONObject) -> dict[str, object]:
    fields = _fields(body)
    if not fields:
        raise ValueError("fields: name at least one Account field to change")
    return _edit(sandbox, ACCOUNT, str(body["id"]), fields)


def set_account(sandbox: OrgHands, body: JSONObject) -> dict[str, object]:
    if "account_id" not in body:
        raise ValueError("account_id: the Account's id, or null to take the Contact out")
    account = body["account_id"]
    return _edit(sandbox, CONTACT, str(body["id"]),
                 {"AccountId": str(account) if account else None})


def account_controls(sandbox: OrgHands) -> dict[str, Operation]:
    """The control API's account operations (connectors/sandbox/control.py)."""
    return {"create_account": lambda body: create_account(sandbox, body),
            "edit_account": lambda body: edit_account(sandbox, body),
            "set_account": lambda body: set_account(sandbox, body)}
