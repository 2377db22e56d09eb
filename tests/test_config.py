"""Configuration errors name the file, the path inside it, what is wrong and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.cli.runtime import Runtime
from syncer.domain.config import connector_settings, load_config
from syncer.domain.config_base import ConfigError
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_MODEL


def real_crm_config() -> dict[str, Any]:
    """The example config switched from sandboxes to real CRMs with env-var secrets."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["model"] = str(EXAMPLE_MODEL)
    hubspot, salesforce = data["connectors"]
    for connector in (hubspot, salesforce):
        connector.pop("sandbox")
    hubspot["base_url"] = "http://127.0.0.1:9"
    hubspot["credentials"] = {"access_token": {"env": "TEST_HUBSPOT_TOKEN"}}
    salesforce["base_url"] = "https://127.0.0.1:9"
    salesforce["credentials"] = {"client_id": {"env": "TEST_SF_ID"},
                                 "client_secret": {"file": "/nonexistent/sf_secret"},
                                 "refresh_token": {"env": "TEST_SF_REFRESH"}}
    return data


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "syncer.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return raised.value.problems


def test_example_config_is_valid() -> None:
    loaded = load_config(EXAMPLE_CONFIG)
    assert [c.name for c in loaded.config.connectors] == ["hubspot", "salesforce"]
    assert loaded.model_path.exists()


def test_unknown_setting_names_file_path_and_fix(tmp_path: Path) -> None:
    data = real_crm_config()
    data["connectors"][0]["feilds"] = data["connectors"][0].pop("fields")
    path = write(tmp_path, data)
    problems = problems_of(path)
    assert any(str(path) in p and "connectors[0] (name: hubspot).feilds" in p
               and "unknown setting 'feilds'" in p and "Fix: remove it or check its spelling" in p
               for p in problems), problems
    # The missing `fields` is reported in the same pass, not after a second try.
    assert any("connectors[0] (name: hubspot).fields" in p and "Fix: add it" in p
               for p in problems), problems


def test_unknown_connector_kind_lists_known_kinds(tmp_path: Path) -> None:
    data = real_crm_config()
    data["connectors"][1]["kind"] = "pipedrive"
    problems = problems_of(write(tmp_path, data))
    assert any("connectors[1] (name: salesforce).kind" in p and "'pipedrive'" in p
               and "hubspot, salesforce" in p for p in problems), problems


def test_bad_values_are_all_reported_at_once(tmp_path: Path) -> None:
    data = real_crm_config()
    data["connectors"][0]["schedule"] = {"every_minutes": -5}
    data["connectors"][1]["reasons_max_length"] = "long"
    data["connectors"][1]["stage_values"]["hot"] = "Hot"
    problems = problems_of(write(tmp_path, data))
    joined = "\n".join(problems)
    assert "connectors[0] (name: hubspot).schedule.every_minutes" in joined
    assert "connectors[1] (name: salesforce).reasons_max_length" in joined
    assert "connectors[1] (name: salesforce).stage_values.hot" in joined
    assert len(problems) >= 3


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    path = tmp_path / "syncer.yaml"
    path.write_text("connectors:\n  - name: hubspot\n    kind: [hubspot\n")
    (problem,) = problems_of(path)
    assert str(path) in problem and "line " in problem and "Fix:" in problem


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "nope.yaml")
    assert "file not found" in problem and "--config" in problem


def test_missing_secrets_name_the_reference_and_never_a_value(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_HUBSPOT_TOKEN", raising=False)
    monkeypatch.setenv("TEST_SF_ID", "client-id-value")
    monkeypatch.setenv("TEST_SF_REFRESH", "5Aep861-refresh-secret-value")
    loaded = load_config(write(tmp_path, real_crm_config()))
    with pytest.raises(ConfigError) as hubspot_error:
        connector_settings(loaded, loaded.connector("hubspot"))
    (problem,) = hubspot_error.value.problems
    assert "connectors[0] (name: hubspot).credentials.access_token" in problem
    assert "TEST_HUBSPOT_TOKEN is not set" in problem and "Fix: export" in problem
    with pytest.raises(ConfigError) as sf_error:
        connector_settings(loaded, loaded.connector("salesforce"))
    message = str(sf_error.value)
    assert "credentials.client_secret" in message and "/nonexistent/sf_secret" in message
    assert "5Aep861-refresh-secret-value" not in message and "client-id-value" not in message


def test_secret_from_file_is_read_and_hidden_from_repr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("pat-na1-11111111-2222-3333-4444-555555555555\n")
    data = real_crm_config()
    data["connectors"][0]["credentials"] = {"access_token": {"file": str(secret_file)}}
    loaded = load_config(write(tmp_path, data))
    settings = connector_settings(loaded, loaded.connector("hubspot"))
    assert settings.credentials["access_token"] == "pat-na1-11111111-2222-3333-4444-555555555555"
    assert "pat-na1" not in repr(settings)


def test_secret_reference_needs_exactly_one_source(tmp_path: Path) -> None:
    data = real_crm_config()
    data["connectors"][0]["credentials"] = {"access_token": "inline-token-value"}
    problems = problems_of(write(tmp_path, data))
    assert any("credentials.access_token" in p for p in problems), problems
    assert not any("inline-token-value" in p for p in problems)


def test_bad_model_threshold_is_reported_with_model_path(tmp_path: Path) -> None:
    model: dict[str, Any] = yaml.safe_load(EXAMPLE_MODEL.read_text())
    model["qualification"]["mql_score"] = "high"
    model_path = tmp_path / "model.yaml"
    model_path.write_text(yaml.safe_dump(model))
    data = real_crm_config()
    data["model"] = "model.yaml"
    data["connectors"] = [{**c, "sandbox": True} for c in data["connectors"]]
    loaded = load_config(write(tmp_path, data))
    from syncer.qualify import ModelError

    with pytest.raises(ModelError) as raised:
        Runtime(loaded, open_store=False)
    message = str(raised.value)
    assert str(model_path) in message and "qualification.mql_score" in message
    assert "Fix" in message or "fix" in message
