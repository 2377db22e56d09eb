"""The README and docs/ say what is true: every relative link lands on a file (and heading)
of this repository, every repository path they name exists, and the README's five-minute
tour runs as written.

The tour test does what a new user does after the first set-up command: in a fresh folder
holding only `.venv` (a link to the virtual environment running these tests), it runs the
set-up command's `syncer demo` step, then every command of the tour's ```sh blocks (between
`<!-- tour -->` and `<!-- /tour -->`) in order, each in bash, and asserts each exits 0.
The set-up's `pip install` is not run: the tests already run inside the installed venv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
#: a repository path in backticks: starts with a top-level folder of the checkout
REPO_PATH = re.compile(r"`((?:config|connectors|syncer|docs|tests|bench|\.ci)/[^`\s]*)`")


def prose(text: str) -> str:
    """The text without fenced code blocks (links and headings there are not links)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|_(?=\W)|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(prose(page.read_text(encoding="utf-8"))):
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_lands_on_a_file_and_heading_in_the_repository(page: Path) -> None:
    problems = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.is_relative_to(REPO):
            problems.append(f"{target}: leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    assert not problems, f"{page.relative_to(REPO)}: " + "; ".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_named_exists(page: Path) -> None:
    missing = [path for path in REPO_PATH.findall(page.read_text(encoding="utf-8"))
               if not (REPO / path).exists()]
    assert not missing, f"{page.relative_to(REPO)} names paths that do not exist: {missing}"


def test_readme_is_short_and_its_test_command_is_the_one_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    test_command = setup_commands(text)[1]
    assert test_command in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def setup_commands(readme: str) -> list[str]:
    """The commands of the set-up section's ```sh blocks: install + demo, then the tests."""
    section = readme.split("\n## Set-up", 1)[1].split("\n## ", 1)[0]
    return [command for block in sh_blocks(section) for command in commands(block)]


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)


def commands(block: str) -> list[str]:
    """One entry per command line: continuation lines joined, blank and comment lines
    dropped (a trailing comment stays: bash ignores it)."""
    joined = re.sub(r"\\\n", " ", block)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def tour_commands(readme: str) -> list[str]:
    assert readme.count("<!-- tour -->") == 1 and readme.count("<!-- /tour -->") == 1, \
        "the README marks its tour with <!-- tour --> ... <!-- /tour -->"
    tour = readme.split("<!-- tour -->", 1)[1].split("<!-- /tour -->", 1)[0]
    found = [command for block in sh_blocks(tour) for command in commands(block)]
    assert found, "the tour has no ```sh blocks"
    return found


@pytest.mark.slow
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "syncer").exists() or not (bin_dir / "activate").exists():
        pytest.skip(f"no installed syncer and activate script beside {sys.executable}")
    readme = README.read_text(encoding="utf-8")
    install_and_demo = setup_commands(readme)[0]
    demo = install_and_demo.split("&&")[-1].strip()
    assert demo.startswith(".venv/bin/syncer demo"), install_and_demo
    tour = tour_commands(readme)

    (tmp_path / ".venv").symlink_to(bin_dir.parent, target_is_directory=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SYNCER_") and key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for command in [demo, *tour]:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300)
        assert done.returncode == 0, (
            f"`{command}` exited {done.returncode}\nstdout (end):\n{done.stdout[-2000:]}"
            f"\nstderr (end):\n{done.stderr[-2000:]}")
    leftovers = {path.name for path in tmp_path.iterdir()} - {".venv", ".syncer", "syncer.yaml"}
    assert not leftovers, f"the tour leaves files in the user's folder: {leftovers}"
