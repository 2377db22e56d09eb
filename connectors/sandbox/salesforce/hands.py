"""What a tester does to the Salesforce sandbox's org by hand, without the API or its
limits: read what is stored, edit a field as a person in the UI would, convert a lead,
merge duplicates, lock rows. SalesforceSandbox (server.py) has these through `OrgHands`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from connectors.sandbox.control import MovableClock
from connectors.sandbox.salesforce.field_rules import RecordRejected, RequestRejected
from connectors.sandbox.salesforce.org import SalesforceOrg
from connectors.sandbox.salesforce.rows import text
from connectors.sandbox.salesforce.successions import OrgSuccessions


class OrgHands:
    """The org's test hands; the sandbox sets `org`, `clock` and `successions`."""

    org: SalesforceOrg
    clock: MovableClock
    successions: OrgSuccessions

    def iter_records(self, *, include_converted: bool = False,
                     include_deleted: bool = False) -> Iterator[dict[str, object]]:
        """Every Lead and Contact with all fields as the API renders them, type under
        "type", generated one at a time (created ones last). Converted leads and deleted
        (merged-away) records only when asked for."""
        for name in ("Lead", "Contact"):
            for row in self.org.rows(name):
                if (include_converted or not row.get("IsConverted")) and \
                        (include_deleted or not row.get("IsDeleted")):
                    yield self.org.rendered(text(row, "Id"))

    def records(self, *, include_converted: bool = False,
                include_deleted: bool = False) -> list[dict[str, object]]:
        """iter_records as a list (small worlds; use iter_records at scale)."""
        with self.org.lock:
            return list(self.iter_records(include_converted=include_converted,
                                          include_deleted=include_deleted))

    def changed_records(self) -> list[dict[str, object]]:
        """Only the rows changed or created since (API writes and inserts, edits, the
        editor, conversions and merges, and the activities those moved)."""
        with self.org.lock:
            return [self.org.rendered(record_id) for record_id in sorted(self.org.overlay)]

    def record(self, record_id: str) -> dict[str, object]:
        """One row of any type by id (15 or 18 chars); KeyError if there is none."""
        with self.org.lock:
            return self.org.rendered(record_id)

    def edit(self, record_id: str, field: str, value: str | None) -> None:
        """Change a field as a person in the UI would; ValueError if the UI would refuse."""
        with self.org.lock:
            found = self.org.lookup(record_id)
            if found is None:
                raise KeyError(record_id)
            try:
                staged = self.org.prepare(found[0], record_id, {field: value},
                                          check_lock=False)
            except (RecordRejected, RequestRejected) as error:
                raise ValueError(str(error)) from error
            self.org.apply(staged, self.clock())

    def convert_lead(self, lead_id: str, *, account_id: str | None = None,
                     contact_id: str | None = None) -> tuple[str, str]:
        """Convert a Lead as a rep (or the API's convertLead) would: into a new Contact
        under `account_id` or a new Account named after its Company, or into the existing
        `contact_id`. Returns (contact id, account id); ValueError where Salesforce would
        refuse (see sandbox_successions)."""
        with self.org.lock:
            return self.successions.convert_lead(lead_id, self.clock(),
                                                 account_id=account_id, contact_id=contact_id)

    def merge(self, master_id: str, *duplicate_ids: str) -> None:
        """Merge one or two duplicate Leads (or Contacts) into the master, as the merge
        UI or API does: the duplicates are deleted with MasterRecordId = the master."""
        with self.org.lock:
            self.successions.merge(master_id, duplicate_ids, self.clock())

    def now(self) -> datetime:
        """The sandbox's current time (what an edit now would stamp)."""
        return self.clock().astimezone(timezone.utc)

    def lock_rows(self, *record_ids: str) -> None:
        """Writes to these records answer UNABLE_TO_LOCK_ROW until unlocked."""
        with self.org.lock:
            self.org.locked.update(record_ids)

    def unlock_rows(self, *record_ids: str) -> None:
        with self.org.lock:
            self.org.locked.difference_update(record_ids)
