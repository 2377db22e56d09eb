"""The Salesforce sandbox's own operations in the control API (connectors/sandbox/control.py):
merge and convert, as a person in Salesforce's UI would do them, outbound messages
(connectors/sandbox/outbound_messages.py), a rep's logged activities and closed deals
(connectors/sandbox/salesforce/sales_controls.py) and Accounts created, edited and given to
Contacts (connectors/sandbox/salesforce/account_controls.py)."""

from __future__ import annotations

from connectors.sandbox.control import Operation
from connectors.sandbox.salesforce.hands import OrgHands
from syncer.domain.json_values import JSONObject


def controls(sandbox: OrgHands) -> dict[str, Operation]:
    """The operations for `sandbox` (SalesforceSandbox, named by its OrgHands: the server
    registers these, so this module does not import it back)."""
    def merge(body: JSONObject) -> dict[str, object]:
        given = body["duplicate_ids"]
        if not isinstance(given, list):
            raise ValueError("duplicate_ids: give a list of one or two record ids")
        duplicates = [str(d) for d in given]
        sandbox.merge(str(body["master_id"]), *duplicates)
        return {"master_id": str(body["master_id"]), "deleted": duplicates}

    def convert(body: JSONObject) -> dict[str, str]:
        account = body.get("account_id")
        contact_id, account_id = sandbox.convert_lead(
            str(body["lead_id"]), account_id=str(account) if account else None)
        return {"contact_id": contact_id, "account_id": account_id}

    from connectors.sandbox.outbound_messages import control_operations
    from connectors.sandbox.salesforce.account_controls import account_controls
    from connectors.sandbox.salesforce.sales_controls import sales_controls

    return {"merge": merge, "convert": convert, **control_operations(sandbox),
            **sales_controls(sandbox), **account_controls(sandbox)}
