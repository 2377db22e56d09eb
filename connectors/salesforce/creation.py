"""What a person syncer creates in Salesforce becomes, and the record it is created as.

The connector's `create_as` option (settings.options, from the config's `create.create_as`)
decides Lead or Contact:

- "account_match" (default): a Contact under the Account whose Name equals the person's
  company (case-insensitive) or whose Website domain equals their email domain; a Lead when
  no Account matches. Free-mail domains (gmail.com, ...) never match an Account.
- "lead": always a Lead (sales qualifies and converts by hand).
- "contact": a Contact under the matched Account, found as above. Salesforce keeps Contacts
  under Accounts (a Contact without one is private to its owner and falls out of account
  reports), so a person without a matching Account still becomes a Lead: in practice
  "contact" states the intent and behaves as "account_match".

Name matches win over domain matches; among equal matches the oldest Account (lowest Id).
Lookups are batched SOQL built with quoted literals (soql.quote, like_contains), never
formatted raw values. A Lead needs Company and LastName: when syncer does not know them
they are "[not provided]", which is what Salesforce's own web-to-lead sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

from connectors.salesforce import mapping
from connectors.salesforce import soql_values as soql
from connectors.salesforce.client import FieldInfo
from syncer.domain.identity import DEFAULT_IGNORED_DOMAINS
from syncer.domain.json_values import text_or_none
from syncer.domain.types import NewPerson

CREATE_RULES = ("account_match", "lead", "contact")
NOT_PROVIDED = "[not provided]"
#: personal mailbox domains: they say nothing about the person's company.
FREE_MAIL_DOMAINS = frozenset(DEFAULT_IGNORED_DOMAINS) | frozenset({
    "msn.com", "me.com", "mac.com", "ymail.com", "mail.com", "zoho.com", "yandex.com",
    "yandex.ru", "gmx.com", "gmx.net", "hotmail.co.uk", "yahoo.co.uk", "pm.me"})
#: the SOQL text of one lookup query at most, so its GET URL stays far below the 16 KB
#: Salesforce accepts once URL-encoded.
QUERY_CHARS = 4000
#: the fields a person's record is created with, before the decided values.
LEAD_FIELDS = ("FirstName", "LastName", "Email", "Title", "Company", "Industry",
               "NumberOfEmployees", "Country")
CONTACT_FIELDS = ("FirstName", "LastName", "Email", "Title", "AccountId", "MailingCountry")


def create_rule(options: Mapping[str, object], connector: str) -> str:
    """The connector's create_as rule; ValueError naming the option if it is unknown."""
    rule = str(options.get("create_as", "account_match"))
    if rule not in CREATE_RULES:
        raise ValueError(f"connector '{connector}': create_as '{rule}' is not one of "
                         f"{', '.join(CREATE_RULES)}. Fix: set create.create_as to one of them")
    return rule


def email_domain(email: str | None) -> str | None:
    """The domain of a work email, or None for a free-mail or malformed address."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower()
    return None if not domain or domain in FREE_MAIL_DOMAINS else domain


def website_domain(website: str | None) -> str | None:
    """'https://www.acme.example/about' -> 'acme.example' (None if there is no host)."""
    if not website:
        return None
    text = website.strip()
    host = urlsplit(text if "//" in text else "//" + text).hostname
    if not host:
        return None
    return host.lower().removeprefix("www.")


def company_key(name: str | None) -> str | None:
    return name.strip().casefold() if name and name.strip() else None


def like_contains(value: str) -> str:
    """A quoted SOQL LIKE pattern matching text that contains `value` literally."""
    body = soql.quote(value)[1:-1].replace("%", "\\%").replace("_", "\\_")
    return f"'%{body}%'"


def account_queries(people: Sequence[NewPerson]) -> Iterator[str]:
    """Batched SOQL finding the candidate Accounts of these people by Name and Website."""
    names = sorted({p.company.strip() for p in people if p.company and p.company.strip()})
    domains = sorted({d for p in people if (d := email_domain(p.email))})
    terms = [("name", soql.quote(n)) for n in names] + \
        [("domain", f"Website LIKE {like_contains(d)}") for d in domains]
    head, tail = "SELECT Id, Name, Website FROM Account WHERE ", " ORDER BY Id"
    for batch in _batches(terms, QUERY_CHARS - len(head + tail + "Name IN () OR ")):
        names = [text for kind, text in batch if kind == "name"]
        parts = ([f"Name IN ({', '.join(names)})"] if names else []) + \
            [text for kind, text in batch if kind == "domain"]
        yield head + " OR ".join(parts) + tail


def _batches(terms: Sequence[tuple[str, str]], room: int) -> Iterator[list[tuple[str, str]]]:
    """The terms in consecutive groups whose text (with a separator each) fits `room`."""
    batch: list[tuple[str, str]] = []
    used = 0
    for term in terms:
        cost = len(term[1]) + len(" OR ")
        if batch and used + cost > room:
            yield batch
            batch, used = [], 0
        batch.append(term)
        used += cost
    if batch:
        yield batch


class AccountIndex:
    """Accounts by lower-case name and by website domain, the oldest first."""

    def __init__(self, accounts: Iterable[Mapping[str, object]]) -> None:
        self.by_name: dict[str, str] = {}
        self.by_domain: dict[str, str] = {}
        for account in sorted(accounts, key=lambda a: str(a["Id"])):
            if (name := company_key(text_or_none(account, "Name"))) is not None:
                self.by_name.setdefault(name, str(account["Id"]))
            if (domain := website_domain(text_or_none(account, "Website"))) is not None:
                self.by_domain.setdefault(domain, str(account["Id"]))

    def match(self, person: NewPerson) -> str | None:
        """The Account id the person belongs under, or None."""
        name = company_key(person.company)
        if name is not None and name in self.by_name:
            return self.by_name[name]
        domain = email_domain(person.email)
        return self.by_domain.get(domain) if domain else None


def email_queries(emails: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(object type, SOQL) finding live Contacts and unconverted Leads with these emails,
    batched like account_queries."""
    terms = [("email", literal) for literal in
             sorted({soql.quote(e.strip()) for e in emails if e and e.strip()})]
    for object_type, extra in (("Contact", ""), ("Lead", "IsConverted = false AND ")):
        head, tail = f"SELECT Id, Email FROM {object_type} WHERE {extra}Email IN (", \
            ") ORDER BY Id"
        for batch in _batches(terms, QUERY_CHARS - len(head + tail)):
            yield object_type, head + ", ".join(text for _, text in batch) + tail


def base_values(person: NewPerson, object_type: str,
                account_id: str | None) -> dict[str, str | int | None]:
    """The person's own fields as the new record's (Company and LastName filled in)."""
    last_name = person.last_name or NOT_PROVIDED
    if object_type == "Lead":
        return {"FirstName": person.first_name, "LastName": last_name, "Email": person.email,
                "Title": person.title, "Company": person.company or NOT_PROVIDED,
                "Industry": person.industry, "NumberOfEmployees": person.employees,
                "Country": person.country}
    return {"FirstName": person.first_name, "LastName": last_name, "Email": person.email,
            "Title": person.title, "AccountId": account_id, "MailingCountry": person.country}


def new_record(person: NewPerson, object_type: str, account_id: str | None,
               fields: Mapping[str, FieldInfo]) -> dict[str, object]:
    """The composite/sobjects record creating `person`. `fields`: describe() of the type.

    The person's own fields adapt to the org: one the integration user may not create is
    left out, a text longer than the field is cut, a value a restricted picklist does not
    hold is left out (the record matters more than its Industry). The decided `values` do
    not adapt: an unknown field or a value the field's type cannot hold raises ValueError
    naming it, and the caller reports that person as failed.
    """
    record: dict[str, object] = {"attributes": {"type": object_type}}
    for name, value in base_values(person, object_type, account_id).items():
        info = fields.get(name.lower())
        if value in (None, "") or info is None or not info.createable:
            continue
        if info.allowed is not None and str(value) not in info.allowed:
            continue
        if isinstance(value, str) and info.type == "string" and info.length:
            value = value[:info.length]
        record[info.name] = value
    for name, value in person.values.items():
        info = fields.get(name.lower())
        if info is None:
            raise ValueError(f"no field {name} on {object_type}")
        if value is None:
            continue
        try:
            record[info.name] = mapping.api_value(info.type, value)
        except ValueError as error:
            raise ValueError(f"{info.name}: {error}") from error
    return record


def record_type(record: Mapping[str, object]) -> str:
    """The sObject type a new_record body creates (its attributes.type)."""
    attributes = record.get("attributes")
    return str(attributes.get("type")) if isinstance(attributes, Mapping) else ""


def not_createable(people: Sequence[NewPerson], fields: Mapping[str, FieldInfo]) -> list[str]:
    """Decided fields the people carry that describe() says cannot be set on insert."""
    names = {name for person in people for name, value in person.values.items()
             if value is not None}
    return sorted(name for name in names
                  if (info := fields.get(name.lower())) is not None and not info.createable)
