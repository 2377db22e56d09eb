"""The HubSpot sandbox as a conformance test sees it (issue 20): a running portal with a
realistic little world, strict API objects of the real hubspot-api-client, and a check that
each answer carries only what HubSpot's OpenAPI documents describe.

The client's models are generated from HubSpot's own OpenAPI documents
(shared/specs/CLIENTS.md): with `client_side_validation = True` an answer missing a
required field, or with a value outside an enum, fails to deserialise. The models drop keys
they do not know and turn a number into the string they expect, so `undocumented` walks
each decoded answer against the model's types as well. The world is made as a tester
would make it: companies, deals, associations and engagements through the control API
(tests/sandbox_control.py).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.sandbox.hubspot.server import HubSpotSandbox
from connectors.sandbox.world import World
from tests.sandbox_control import result

NOW = datetime(2026, 8, 12, 15, 0, tzinfo=timezone.utc)
DANA = "dana.whitfield@syncer-sandbox.test"
ENGAGEMENT_KINDS = ("call", "meeting", "email", "note", "task")

@dataclass
class Portal:
    """A running sandbox with a realistic little world and the ids a case needs."""

    box: HubSpotSandbox
    contact: str
    other_contact: str
    company: str
    deal: str
    engagements: dict[str, str]  # "calls" -> an engagement id on `contact`
    made: list[Any]
    #: every answer the client deserialised: (models module, response type, decoded JSON)
    answers: list[tuple[Any, str, object]] = field(default_factory=list)

    def api(self, package: str, name: str) -> Any:
        """A strict API object of the real client (`package` under hubspot.)."""
        module = importlib.import_module(f"hubspot.{package}")
        configuration = module.Configuration(host=self.box.base_url)
        configuration.access_token = self.box.credentials["access_token"]
        configuration.client_side_validation = True
        configuration.retries = False
        client = module.ApiClient(configuration=configuration)
        deserialize = client.deserialize

        def recorded(response: Any, response_type: str) -> Any:
            self.answers.append((module.models, response_type, json.loads(response.data)))
            return deserialize(response, response_type)
        client.deserialize = recorded  # call_api looks it up on the instance
        api = getattr(module, name)(api_client=client)
        self.made.append(api)
        return api

    def model(self, package: str, name: str, /, **values: Any) -> Any:
        """A request model of `package`, validated like the answers."""
        module = importlib.import_module(f"hubspot.{package}")
        configuration = module.Configuration()
        configuration.client_side_validation = True
        return getattr(module, name)(local_vars_configuration=configuration, **values)


@contextmanager
def running_portal() -> Iterator[Portal]:
    """A started sandbox with an associated company, a won deal and one engagement of
    each type on the first contact; stopped (and the clients' pools closed) after."""
    box = HubSpotSandbox(World(seed=7, size=40, now=NOW), clock=lambda: NOW,
                         requests_per_10s=None, search_requests_per_second=None)
    box.start()
    made: list[Any] = []
    try:
        contact, other = (str(r["id"]) for r in box.records()[:2])
        owner = next(iter(box.owner_ids().values()))
        company = str(result(box, "create_company", name="Acme", domain="acme.example",
                             industry="Software", numberofemployees="250",
                             hubspot_owner_id=owner)["id"])
        result(box, "associate", id=contact, company_id=company, primary=True)
        deal = str(result(box, "close_deal", id=contact, won=True)["id"])
        engagements = {f"{kind}s": str(result(box, "log_activity", id=contact, kind=kind,
                                               owner=DANA, subject=f"A {kind}")["id"])
                       for kind in ENGAGEMENT_KINDS}
        yield Portal(box, contact, other, company, deal, engagements, made)
    finally:
        for api in made:
            api.api_client.rest_client.pool_manager.clear()
        box.stop()


PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "datetime": (str,),
    "date": (str,), "object": (object,)}
#: where the generated model names a string and HubSpot's own answers carry a JSON
#: number: the v4 associations' toObjectId (the client turns it into a string)
NUMBER_AS_STRING = frozenset({"MultiAssociatedObjectWithLabel.toObjectId"})
#: keys HubSpot's answers carry that the generated model leaves out: every error body
#: has "status": "error", a 429 also errorType and policyName (the API usage guide)
UNMODELLED = frozenset({"Error.status", "Error.errorType", "Error.policyName"})


def undocumented(models: Any, kind: str, data: object, where: str) -> list[str]:
    """What of `data` the document behind `kind` does not describe: keys the model lacks,
    primitives of another JSON type. Empty when the answer is the documented shape."""
    if data is None:
        return []
    listed = re.fullmatch(r"list\[(.*)\]", kind)
    if listed:
        if not isinstance(data, list):
            return [f"{where}: a list expected, got {type(data).__name__}"]
        return [p for i, item in enumerate(data)
                for p in undocumented(models, listed.group(1), item, f"{where}[{i}]")]
    mapped = re.fullmatch(r"dict\[([^,]*), (.*)\]", kind)
    if mapped:
        if not isinstance(data, dict):
            return [f"{where}: an object expected, got {type(data).__name__}"]
        return [p for k, v in data.items()
                for p in undocumented(models, mapped.group(2), v, f"{where}.{k}")]
    if kind in PRIMITIVES:
        ok = isinstance(data, PRIMITIVES[kind]) and not (
            kind in ("int", "float") and isinstance(data, bool))
        return [] if ok else [f"{where}: {kind} expected, got {data!r}"]
    model = getattr(models, kind)
    if not isinstance(data, dict):
        return [f"{where}: {kind} expected, got {type(data).__name__}"]
    by_key = {key: attr for attr, key in model.attribute_map.items()}
    problems = [f"{where}.{key}: not in {kind}" for key in data
                if key not in by_key and f"{kind}.{key}" not in UNMODELLED]
    for key, value in data.items():
        if key in by_key:
            inner = model.openapi_types[by_key[key]]
            if f"{kind}.{key}" in NUMBER_AS_STRING and isinstance(value, int):
                continue
            problems.extend(undocumented(models, inner, value, f"{where}.{key}"))
    return problems


def stamped(record: Any) -> None:
    """What syncer reads of every CRM object: id, properties, both stamps, archived."""
    assert record.id and isinstance(record.properties, dict)
    assert isinstance(record.created_at, datetime) and isinstance(record.updated_at, datetime)
    assert record.created_at <= record.updated_at
    assert record.archived in (False, None)


def search_request(portal: Portal, package: str, stamp: str, *properties: str) -> Any:
    since = str(int((NOW - timedelta(days=3650)).timestamp() * 1000))
    return portal.model(package, "PublicObjectSearchRequest", filter_groups=[
        portal.model(package, "FilterGroup", filters=[portal.model(
            package, "Filter", property_name=stamp, operator="GTE", value=since)])],
        sorts=[f"{stamp}"], properties=list(properties), limit=5, after="0")


def properties_list(object_type: str, *expected: str) -> Callable[[Portal], None]:
    def case(portal: Portal) -> None:
        answer = portal.api("crm.properties", "CoreApi").get_all(object_type, archived=False)
        names = {p.name for p in answer.results}
        assert set(expected) <= names, set(expected) - names
        for prop in answer.results:
            assert prop.type and prop.field_type and prop.group_name
            assert prop.label is not None and isinstance(prop.options, list)
    return case


def properties_create(object_type: str) -> Callable[[Portal], None]:
    def case(portal: Portal) -> None:
        groups = portal.api("crm.properties", "GroupsApi")
        group = groups.create(object_type, portal.model(
            "crm.properties", "PropertyGroupCreate", name="conformance", label="Checks"))
        assert (group.name, group.label) == ("conformance", "Checks")
        assert "conformance" in {g.name for g in groups.get_all(object_type).results}
        core = portal.api("crm.properties", "CoreApi")
        made = core.create(object_type, portal.model(
            "crm.properties", "PropertyCreate", name="syncer_conformance", label="Score",
            type="number", field_type="number", group_name="conformance"))
        assert (made.name, made.type, made.field_type, made.group_name) == (
            "syncer_conformance", "number", "number", "conformance")
        names = {p.name for p in core.get_all(object_type, archived=False).results}
        assert "syncer_conformance" in names
    return case


class Body:
    """An error answer's body as the client's deserializer takes it."""

    def __init__(self, data: str) -> None:
        self.data = data


def error_model(portal: Portal, package: str, call: Callable[[], object],
                status: int, category: str) -> None:
    """A 4xx answer whose body is HubSpot's Error (category, correlationId, message)."""
    module = importlib.import_module(f"hubspot.{package}")
    with pytest.raises(module.ApiException) as caught:
        call()
    assert caught.value.status == status
    strict = portal.api(package, "BasicApi" if package != "events" else "EventsApi")
    body = strict.api_client.deserialize(Body(caught.value.body), "Error")
    assert body.category == category and body.message and body.correlation_id


def documented(portal: Portal) -> None:
    """Every answer a case read carries only what its document describes (204s: none)."""
    problems = [p for models, kind, data in portal.answers if kind
                for p in undocumented(models, kind, data, kind)]
    assert not problems, "\n".join(problems)
