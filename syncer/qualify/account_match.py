"""Which CRM account records are one company, and which company a person works for.

Pure: the run hands in every stored account record and gets back an `AccountIndex`.
Records of different CRMs are one company when their domains match, else when one names
the other's id in `linked_ids` (HubSpot's `salesforceaccountid`); links are followed
transitively, so a chain of links and shared domains is one company. The company's key is
"domain:<its smallest domain>", or "id:<connector>:<record id>" (its smallest) when no
record has a domain: the same records always get the same key, whatever order they come
in. Routing's account index uses the same "domain:<domain>" keys (qualify/routing.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from syncer.domain.accounts import Account
from syncer.domain.identity import DEFAULT_IGNORED_DOMAINS
from syncer.domain.types import Person

FREE_MAIL: frozenset[str] = frozenset(DEFAULT_IGNORED_DOMAINS)


def clean_domain(value: str | None) -> str | None:
    """A domain as accounts compare them: lower case, no scheme, `www.` or path."""
    if not value:
        return None
    text = value.strip().lower()
    text = text.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    text = text.removeprefix("www.").rstrip(".")
    return text or None


@dataclass(frozen=True)
class AccountIndex:
    """The companies the stored account records make up."""

    #: (connector, record id) -> company key
    key_of: Mapping[tuple[str, str], str]
    #: every domain of a company -> its key
    by_domain: Mapping[str, str]
    #: company key -> its records, in connector order then record id
    groups: Mapping[str, tuple[Account, ...]]

    def person_account(self, records: Sequence[Person]) -> str | None:
        """The company of a person (their records in precedence order): the first record's
        own link (`account_id`) to a known account, else the company whose domain is an
        email domain of theirs; a free-mail domain never names a company."""
        for record in records:
            if record.account_id:
                key = self.key_of.get((record.source, record.account_id))
                if key is not None:
                    return key
        for record in records:
            domain = email_domain(record.email)
            if domain is not None and domain in self.by_domain:
                return self.by_domain[domain]
        return None


def email_domain(email: str | None) -> str | None:
    """The company domain of an email address; None for a free-mail (personal) one."""
    if not email or "@" not in email:
        return None
    domain = clean_domain(email.rpartition("@")[2])
    return None if domain is None or domain in FREE_MAIL else domain


def index_accounts(accounts: Iterable[Account], kinds: Mapping[str, str],
                   order: Sequence[str] = ()) -> AccountIndex:
    """Group account records into companies. `kinds`: connector name -> kind (a link
    names the other CRM by kind); `order`: connector precedence (earlier first in each
    group, e.g. for which name a company is shown with)."""
    records = {(a.source, a.record_id): a for a in accounts}
    parent = {ref: ref for ref in records}

    def root(ref: tuple[str, str]) -> tuple[str, str]:
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    def join(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_by_domain: dict[str, tuple[str, str]] = {}
    by_kind_id = {(kinds.get(source, source), record_id): (source, record_id)
                  for source, record_id in records}
    for ref in sorted(records):
        account = records[ref]
        domain = clean_domain(account.domain)
        if domain is not None:
            join(first_by_domain.setdefault(domain, ref), ref)
        for kind, other_id in sorted(account.linked_ids.items()):
            other = by_kind_id.get((kind, other_id))
            if other is not None:
                join(ref, other)
    members: dict[tuple[str, str], list[Account]] = {}
    for ref in sorted(records):
        members.setdefault(root(ref), []).append(records[ref])
    rank = {name: i for i, name in enumerate(order)}
    key_of: dict[tuple[str, str], str] = {}
    by_domain: dict[str, str] = {}
    groups: dict[str, tuple[Account, ...]] = {}
    for group in members.values():
        domains = sorted({d for a in group if (d := clean_domain(a.domain)) is not None})
        first = min((a.source, a.record_id) for a in group)
        key = f"domain:{domains[0]}" if domains else f"id:{first[0]}:{first[1]}"
        groups[key] = tuple(sorted(group, key=lambda a: (rank.get(a.source, len(rank)),
                                                         a.source, a.record_id)))
        for account in group:
            key_of[(account.source, account.record_id)] = key
        for domain in domains:
            by_domain[domain] = key
    return AccountIndex(key_of, by_domain, groups)
