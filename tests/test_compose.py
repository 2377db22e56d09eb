"""compose.yaml and deploy/tenants/ stay runnable as the code changes: every service's
command is one syncer accepts, every tenant file validates, and every secret a tenant reads
is one compose mounts. (Docker itself is not on the CI machine; the image is built from
the same Dockerfile the wheel test checks.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from syncer.cli import build_parser
from syncer.domain.tenants import load_tenant, tenant_names

REPO = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return data


def test_the_services_are_the_issue_s_shape_and_run_syncer_commands() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "dispatcher", "worker-small", "worker-any", "web"}
    parser = build_parser()
    commands = {name: parser.parse_args(service["command"]).command
                for name, service in services.items() if name != "db"}
    assert commands == {"dispatcher": "dispatch", "worker-small": "worker",
                        "worker-any": "worker", "web": "web"}
    assert services["web"]["ports"] == ["127.0.0.1:8788:8788"]  # loopback of the host only
    assert services["worker-small"]["command"][-2:] == ["--queue", "default"]
    for name, service in services.items():
        if name != "db":
            assert service["depends_on"]["db"]["condition"] == "service_healthy"
            assert "password" not in str(service["environment"]).lower()


def test_every_tenant_validates_and_its_secrets_are_mounted() -> None:
    data = compose()
    directory = REPO / "deploy" / "tenants"
    names = tenant_names(directory)
    assert names
    mounted = {f"/run/secrets/{name}" for name in data["secrets"]}
    service = data["services"]["worker-any"]
    mounts = dict(volume.split(":")[:2] for volume in service["volumes"])
    for name in names:
        loaded = load_tenant(directory, name)
        assert loaded.tenant == name
        assert str(loaded.model_path) in mounts.values()
        for connector in loaded.config.connectors:
            assert not connector.sandbox
            for ref in connector.credentials.values():
                assert ref.file in mounted, (name, ref.file)
    for source in mounts:
        assert (REPO / source).exists(), source
    assert (REPO / "Dockerfile").exists() and service["build"] == "."
