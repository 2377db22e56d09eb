"""Shared person fields (title, phone, ...): which value wins when the CRMs disagree.

A shared field is a person field both CRMs hold and that syncer keeps in step by a policy
(config `shared_fields:`). `settle_shared_fields` decides, for one person, which value every
record should hold and which writes get it there. It is pure (no I/O, no clock): the
pipeline hands it the person's records as just pulled, the *base* from the store and the
config, and pushes, audits and stores what it returns.

The base is, per person and shared field, the value all records agreed on after the last
sync (table `shared_values`). It is what tells a change from a difference: a record whose
value differs from the base was changed (in its CRM) since the last sync.

===============  ======================================================  ====================
policy           what every record holds after the sync                  new base
===============  ======================================================  ====================
hubspot_wins,    the value in the connector of that kind, written to     that value
salesforce_wins  every other record that differs. A blank there erases   (blank there: see
                 nothing: no writes at all.                              "agree" below)
latest           the value of the side that changed since the last       the settled value
                 sync. Both changed (to different values): the record
                 modified last wins; a tie goes to the connector listed
                 first in the config. A blank that replaced a value is a
                 change (someone cleared it): the clearing is propagated.
fill_if_blank    unchanged where non-blank; a blank record gets the      see "agree" below
                 first non-blank value (connectors in config order)
never            untouched (a field sales owns; it is not even read)     none
===============  ======================================================  ====================

"agree": the base is recorded when every record holds one value after the writes (all
blank counts), and otherwise left as stored.

Rules every policy shares (and the caller can rely on):

- Values are compared with `syncer.run.diff.canonical`: trimmed, blank is None, numbers in
  one form ("42" == "42.0"; note that this also makes "0612" equal "612"). What is written is
  the winning record's value as text, trimmed, never reformatted.
- No base yet (the person's first sync with the field) counts as "both changed", with one
  safety rule: a blank is not a clearing then (nothing known was cleared), so a first sync
  never erases a value.
- "Modified last" is the record's modification time (`Person.updated_at`: HubSpot's
  lastmodifieddate, Salesforce's SystemModstamp). Per-field times exist (HubSpot property
  history, Salesforce field history tracking) but cost extra calls or an admin set-up in
  every org, so `latest` uses the record-level time both CRMs give for free: an edit to any
  other field of a record makes its shared fields count as recent too. A record with no time
  counts as the oldest.
- Only a person with records in at least two of the field's connectors is settled; the field
  of a person known to one CRM only is that CRM's business, and no base is recorded (the
  first sync that sees both sides counts as the first).
- Duplicates: every record of a connector is treated the same; each one that differs from
  the settled value is written. Within one connector the most recently modified record
  speaks first. A blank duplicate beside a non-blank record of the same connector is "not
  filled yet", never a clearing: clearing a field takes clearing it on all of them.
- A record whose pull did not include the field (stored before the field was configured)
  takes no part until it is pulled again: its value is unknown, not blank.
- `base` holds an entry only for fields whose records all hold one value after the writes;
  a field missing there keeps whatever base is stored. Store it only once the writes went
  through (`SharedWrites.base_after`): a write that failed must leave the old base, so that
  the next run sees the same change and settles it the same way, instead of taking the
  unchanged old value for a new edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from syncer.domain.config import SharedField
from syncer.domain.types import Person
from syncer.domain.values import canonical

RecordRef = tuple[str, str]
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class SharedWrites:
    """What settling one person's shared fields asks for."""

    #: (connector, record_id) -> {CRM field: value to write}; None clears the field
    writes: dict[RecordRef, dict[str, str | None]]
    #: shared field name -> the base to store after the writes (see `base_after`)
    base: dict[str, str | None]
    #: shared field name -> the records written for it
    targets: dict[str, frozenset[RecordRef]] = field(default_factory=dict)
    #: shared field name -> one line saying why its value won (fields written only; for
    #: the audit rows of those writes)
    reasons: dict[str, str] = field(default_factory=dict)

    def base_after(self, failed: Iterable[RecordRef] = ()) -> dict[str, str | None]:
        """The base to store once the writes were pushed: fields with a write to one of the
        `failed` (connector, record_id) are left out, so their stored base stays."""
        failed_set = frozenset(failed)
        return {name: value for name, value in self.base.items()
                if not self.targets.get(name, frozenset()) & failed_set}


@dataclass(frozen=True)
class _Holder:
    """One record's value of one shared field."""

    record: Person
    crm_field: str
    value: str | None
    rank: int

    @property
    def ref(self) -> RecordRef:
        return self.record.source, self.record.record_id

    @property
    def canon(self) -> str | None:
        return canonical(self.value)

    @property
    def modified(self) -> datetime:
        at = self.record.updated_at
        if at is None:
            return _OLDEST
        return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class _Target:
    """The value a field settles on; `overwrite` False writes it into blank records only."""

    value: str | None
    overwrite: bool
    reason: str


def settle_shared_fields(specs: Sequence[SharedField], records: Sequence[Person],
                         base: Mapping[str, str | None], kinds: Mapping[str, str],
                         connector_order: Sequence[str]) -> SharedWrites:
    """Settle every shared field of one person (see the module docstring for the rules).

    `records` are the person's records that take writes (retired ones left out), with the
    shared CRM fields in `crm_values`; `base` is the stored base per shared field name (a
    missing name: no base yet); `kinds` maps connector name -> kind ("hubspot", ...);
    `connector_order` is the connectors' order in the config (ties go to the first).
    """
    rank = {name: index for index, name in enumerate(connector_order)}
    writes: dict[RecordRef, dict[str, str | None]] = {}
    new_base: dict[str, str | None] = {}
    targets: dict[str, frozenset[RecordRef]] = {}
    reasons: dict[str, str] = {}
    for spec in specs:
        if spec.policy == "never":
            continue
        holders = _holders(spec, records, rank)
        if len({h.record.source for h in holders}) < 2:
            continue
        target = _target(spec, holders, base, kinds)
        final = {h.ref: h.value for h in holders}
        written: set[RecordRef] = set()
        if target is not None:
            for holder in holders:
                if holder.canon == canonical(target.value):
                    continue
                if holder.canon is not None and not target.overwrite:
                    continue
                writes.setdefault(holder.ref, {})[holder.crm_field] = target.value
                final[holder.ref] = target.value
                written.add(holder.ref)
        if written and target is not None:
            targets[spec.name] = frozenset(written)
            reasons[spec.name] = target.reason
        agreed = {canonical(value) for value in final.values()}
        if len(agreed) == 1:
            new_base[spec.name] = (target.value if target is not None
                                   else next(iter(final.values())))
    return SharedWrites(writes, new_base, targets, reasons)


def _text(value: object | None) -> str | None:
    """A CRM value as the text to compare and write: trimmed, blank as None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _holders(spec: SharedField, records: Sequence[Person],
             rank: Mapping[str, int]) -> list[_Holder]:
    """The records holding the field, in speaking order: connectors in config order, then
    the most recently modified record first, then by id (so the result is deterministic)."""
    holders: list[_Holder] = []
    for record in records:
        crm_field = spec.fields.get(record.source)
        if crm_field is None:
            continue
        key = _key_in(record.crm_values, crm_field)
        if key is None:
            continue  # not pulled with this field: its value is unknown, not blank
        holders.append(_Holder(record, key, _text(record.crm_values[key]),
                               rank.get(record.source, len(rank))))
    holders.sort(key=lambda h: (h.rank, h.record.source, -h.modified.timestamp(),
                                h.record.record_id))
    return holders


def _key_in(values: Mapping[str, object], crm_field: str) -> str | None:
    """The key holding `crm_field` (CRM field names are case-insensitive; connectors keep
    the first spelling configured)."""
    if crm_field in values:
        return crm_field
    lowered = crm_field.lower()
    return next((key for key in values if key.lower() == lowered), None)


def _target(spec: SharedField, holders: Sequence[_Holder], base: Mapping[str, str | None],
            kinds: Mapping[str, str]) -> _Target | None:
    if spec.policy == "latest":
        return _latest(spec, holders, base)
    if spec.policy == "fill_if_blank":
        donor = next((h for h in holders if h.canon is not None), None)
        if donor is None:
            return None
        return _Target(donor.value, False,
                       f"{spec.name}: fill_if_blank, from {_where(donor)}")
    kind = spec.policy.removesuffix("_wins")
    winner = next((h for h in holders if kinds.get(h.record.source) == kind
                   and h.canon is not None), None)
    if winner is None:
        return None  # a blank (or no record) on the winning side erases nothing
    return _Target(winner.value, True, f"{spec.name}: {spec.policy}, from {_where(winner)}")


def _latest(spec: SharedField, holders: Sequence[_Holder],
            base: Mapping[str, str | None]) -> _Target:
    """The side changed since the base wins; if several changed, the record modified last
    (then the connector listed first)."""
    known = spec.name in base
    was = canonical(base.get(spec.name))
    filled = {h.record.source for h in holders if h.canon is not None}

    def changed(holder: _Holder) -> bool:
        if holder.canon is None:
            # A clearing only against a known value, and only if the whole side is blank.
            return known and was is not None and holder.record.source not in filled
        return holder.canon != was  # no base: `was` is None, so any value is a change

    candidates = [h for h in holders if changed(h)]
    if not candidates:
        if not known:
            return _Target(None, True, f"{spec.name}: latest, blank everywhere")
        return _Target(base[spec.name], True,
                       f"{spec.name}: latest, unchanged since the last sync")
    winner = min(candidates, key=lambda h: (-h.modified.timestamp(), h.rank,
                                            h.record.source, h.record.record_id))
    rivals = {h.canon for h in candidates}
    how = "changed it last" if len(rivals) > 1 else "changed it"
    return _Target(winner.value, True, f"{spec.name}: latest, {_where(winner)} {how}")


def _where(holder: _Holder) -> str:
    at = holder.record.updated_at
    stamp = f" (modified {at.isoformat()})" if at is not None else ""
    return f"{holder.record.source} record {holder.record.record_id}{stamp}"


#: Person attributes a shared field can stand for (by its `name`), so the decision is made
#: on the value every record will hold after the sync, not on what one side held before.
_PERSON_ATTRIBUTES = frozenset({"title", "company", "industry", "country", "first_name",
                                "last_name"})


def as_settled(records: Sequence[Person], specs: Sequence[SharedField],
               shared: SharedWrites) -> list[Person]:
    """The records with each shared person attribute (a shared field named `title`,
    `company`, ...) set to the value being written to them. Qualifying these instead of the
    records as pulled keeps the score in step with the settled value: otherwise the run
    after a settlement would see its own writes come back and change the score again."""
    names = {spec.name: spec for spec in specs if spec.name in _PERSON_ATTRIBUTES}
    settled: list[Person] = []
    for record in records:
        writes = shared.writes.get((record.source, record.record_id), {})
        changes: dict[str, object | None] = {}
        for name, spec in names.items():
            crm_field = spec.fields.get(record.source)
            key = _key_in(writes, crm_field) if crm_field is not None else None
            if key is not None:
                changes[name] = writes[key]
        settled.append(replace(record, **changes) if changes else record)  # type: ignore[arg-type]
    return settled
