"""`account_fields` and `fields.buying_role` in the config (issue 20 item 3): the kind's
default field names, a field left out by null, what the connectors are told to read, and
a mistyped key named with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.domain.config import ConfigError, connector_settings, parse_config, writeback_fields
from syncer.run.setup_fields import account_field_needs, field_needs
from tests.conftest import EXAMPLE_CONFIG


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    return data


def test_account_fields_take_the_kinds_defaults_and_null_drops_one() -> None:
    data = example()
    data["connectors"][0]["account_fields"] = {}
    data["connectors"][0]["fields"]["buying_role"] = "syncer_buying_role"
    data["connectors"][1]["account_fields"] = {"reasons": None, "mqa": "Is_MQA__c"}
    loaded = parse_config(data, Path("syncer.yaml"))
    hubspot, salesforce = loaded.config.connectors
    assert hubspot.account_fields is not None and salesforce.account_fields is not None
    assert hubspot.account_fields.names() == [
        "syncer_account_score", "syncer_account_grade", "syncer_account_mqa",
        "syncer_account_reasons"]
    assert salesforce.account_fields.items() == [
        ("score", "Syncer_Account_Score__c"), ("grade", "Syncer_Account_Grade__c"),
        ("mqa", "Is_MQA__c")]
    assert connector_settings(loaded, salesforce).account_writeback_fields == (
        "Syncer_Account_Score__c", "Syncer_Account_Grade__c", "Is_MQA__c")
    assert "syncer_buying_role" in writeback_fields(loaded, hubspot)
    assert [n.name for n in account_field_needs(salesforce)] == [
        "Syncer_Account_Score__c", "Syncer_Account_Grade__c", "Is_MQA__c"]
    assert "syncer_buying_role" in [n.name for n in field_needs(loaded, hubspot)]


def test_without_account_fields_nothing_is_read_or_set_up() -> None:
    loaded = parse_config(example(), Path("syncer.yaml"))
    for connector in loaded.config.connectors:
        assert connector.account_fields is None
        assert connector_settings(loaded, connector).account_writeback_fields == ()
        assert account_field_needs(connector) == []


def test_a_mistyped_account_field_is_named_with_its_path() -> None:
    data = example()
    data["connectors"][1]["account_fields"] = {"scroe": "X__c"}
    with pytest.raises(ConfigError) as error:
        parse_config(data, Path("syncer.yaml"))
    assert "connectors[1] (name: salesforce).account_fields.scroe" in str(error.value)
