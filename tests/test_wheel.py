"""The installed wheel works on its own, as in the Docker image (a non-editable install).

The slow test builds the wheel from this checkout, installs it with its dependencies into a
fresh virtual environment (pip resolves them from the configured index and its cache; no
access to the project's .venv, so a dependency missing from pyproject.toml fails it), and
runs `syncer demo` from an empty folder with that environment's `syncer`: the example
config and model must come from the wheel itself. About 50 s on an idle machine, most of it
pip installing numpy, scipy and scikit-learn.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tree_packages() -> set[str]:
    """Every package of the checkout (a folder with __init__.py under syncer/ or connectors/)."""
    return {".".join(init.parent.relative_to(REPO).parts)
            for top in ("syncer", "connectors") for init in (REPO / top).rglob("__init__.py")
            if "__pycache__" not in init.parts}


def test_pyproject_lists_every_package_and_ships_the_examples() -> None:
    """pyproject lists packages by hand (to map config/ into the wheel): a package missing
    from the list would be missing from the wheel and the image."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert listed - {"syncer.examples"} == tree_packages()
    assert setuptools["package-dir"]["syncer.examples"] == "config"
    for name in ("syncer.example.yaml", "model.example.yaml"):
        assert (REPO / "config" / name).is_file()


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.mark.slow
def test_demo_runs_from_the_installed_wheel(tmp_path: Path) -> None:
    # Build from a copy: setuptools writes build/ into the source folder, and the checkout
    # is shared with other test runs.
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    for name in ("syncer", "connectors", "config"):
        shutil.copytree(REPO / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(wheels),
          "-q"], cwd=tmp_path)
    wheel = next(wheels.glob("syncer-*.whl"))
    env_dir = tmp_path / "venv"
    # A fresh venv without pip of its own (ensurepip costs seconds): this interpreter's pip
    # installs into it (`pip --python`), the wheel and every dependency it declares.
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python, syncer = env_dir / "bin" / "python", env_dir / "bin" / "syncer"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", str(wheel)],
         cwd=tmp_path)

    folder = tmp_path / "empty"
    folder.mkdir()
    clean = {k: v for k, v in os.environ.items()
             if k not in ("SYNCER_CONFIG", "SYNCER_STATE_URL", "PYTHONPATH", "VIRTUAL_ENV")}
    result = _run([str(syncer), "demo", "--people", "60"], cwd=folder, env=clean)

    assert "syncer setup: created the fields the config maps" in result.stdout
    assert "people qualified : 60" in result.stdout
    assert "state and audit  : sqlite:///" in result.stdout
    assert "hubspot          : pulled" in result.stdout
    assert "salesforce       : pulled" in result.stdout
    assert (folder / ".syncer" / "demo.db").is_file()
    # the example came from the wheel, not from this checkout
    shown = _run([str(python), "-c", "from syncer.domain.config import EXAMPLE_CONFIG; "
                  "print(EXAMPLE_CONFIG)"], cwd=folder, env=clean).stdout
    assert str(env_dir) in shown and str(REPO) not in shown

