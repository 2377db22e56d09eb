"""Each connector owns its CRM's error code -> cause table (connectors/<crm>/errors.py); the
wiring registers them, and the domain (syncer/domain/errors.py) names no CRM code."""

from __future__ import annotations

import re

import pytest

from connectors.hubspot.errors import ERROR_CODES as HUBSPOT
from connectors.salesforce.errors import ERROR_CODES as SALESFORCE
from syncer.domain import errors
from syncer.domain.errors import CauseRegistry, ErrorCodes
from tests.conftest import REPO


def test_each_connector_classifies_its_own_codes() -> None:
    registry = CauseRegistry()
    registry.register(HUBSPOT, SALESFORCE)
    assert registry.cause_of("INVALID_OPTION", ("industry",)) == errors.BAD_PICKLIST
    assert registry.cause_of("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST") == errors.BAD_PICKLIST
    assert registry.cause_of("invalid_grant") == errors.AUTH
    assert registry.cause_of("MALFORMED_ID", ("OwnerId",)) == errors.BAD_OWNER
    assert registry.cause_of("MALFORMED_ID", ("Id",)) == errors.NOT_FOUND
    assert registry.cause_of("UNCONFIRMED") == errors.UNAVAILABLE
    assert registry.cause_of("SOMETHING_NEW") == registry.cause_of(None) == errors.OTHER


def test_only_the_registered_crms_are_known() -> None:
    registry = CauseRegistry()
    assert registry.cause_of("INVALID_OPTION") == errors.OTHER  # nothing registered yet
    registry.register(SALESFORCE)
    assert registry.cause_of("INVALID_OPTION") == errors.OTHER  # a HubSpot code
    assert registry.cause_of("ENTITY_IS_DELETED") == errors.NOT_FOUND
    assert [t.crm for t in registry.tables()] == ["salesforce"]


def test_the_wiring_registers_both_crms() -> None:
    import syncer.cli.runtime  # noqa: F401  (registers on import)

    assert {t.crm for t in errors.REGISTRY.tables()} == {"hubspot", "salesforce"}
    assert errors.cause_of("CANNOT_UPDATE_CONVERTED_LEAD") == errors.LOCKED


def test_two_crms_may_not_mean_different_causes_by_one_code() -> None:
    registry = CauseRegistry()
    registry.register(ErrorCodes("a", {"LOCKED": errors.LOCKED}))
    registry.register(ErrorCodes("b", {"LOCKED": errors.LOCKED}))  # same meaning: fine
    with pytest.raises(ValueError, match=r"\['LOCKED'\] mean another cause in c than in a"):
        registry.register(ErrorCodes("c", {"LOCKED": errors.UNAVAILABLE}))


def test_a_table_names_causes_syncer_knows_in_upper_case() -> None:
    with pytest.raises(ValueError, match="unknown causes \\['tired'\\]"):
        ErrorCodes("x", {"SLOW": "tired"})
    with pytest.raises(ValueError, match="must be upper case: \\['slow'\\]"):
        ErrorCodes("x", {"slow": errors.UNAVAILABLE})


def test_the_domain_names_no_crm_code() -> None:
    source = (REPO / "syncer" / "domain" / "errors.py").read_text(encoding="utf-8")
    codes = set(HUBSPOT.causes) | set(SALESFORCE.causes)
    named = sorted(code for code in codes if re.search(rf"[\"']{code}[\"']", source))
    assert named == []  # (LOCKED, NOT_FOUND are also names of causes: quoted codes only)
