"""Screenshots of every page of the web admin for docs/web.md (not a test).

    .venv/bin/python -m tests.web.take_screenshots [--out docs/screenshots]

Serves the sandbox world the tests use (160 people), syncs it once with two Salesforce
leads locked (two dead letters), loosens the model file's MQL threshold (a candidate to
preview), logs in as an admin in the system's Chromium and saves one PNG per page.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from connectors.sandbox.world import World
from syncer.domain.types import Stage
from tests.conftest import NOW, running_sandboxes, sync_once
from tests.web.conftest import ADMIN, build_admin, sandbox_web_config, serve
from tests.web.test_browser import CHROMIUM, log_in

REPO = Path(__file__).resolve().parents[2]


def shoot(page: Page, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print(out / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch, \
            running_sandboxes(World(seed=7, size=160, now=NOW)) as sandboxes:
        admin = build_admin(sandbox_web_config(sandboxes, Path(folder), patch),
                            NOW + timedelta(hours=1))
        leads = [r for r in sandboxes.salesforce.records() if r["type"] == "Lead"][:2]
        sandboxes.salesforce.lock_rows(*(r["Id"] for r in leads))  # type: ignore[attr-defined]
        summary = sync_once(admin.loaded)
        model = admin.loaded.model_path
        model.write_text(model.read_text().replace("mql_score: 25", "mql_score: 20"))
        decisions = admin.store.decisions(admin.store.person_keys())
        person = next(k for k, d in sorted(decisions.items()) if d.stage is Stage.MQL)
        with serve(admin.app) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + "/login")
            shoot(page, args.out, "login")
            log_in(page, None, ADMIN)
            expect(page.get_by_test_id("who")).to_be_visible()
            shoot(page, args.out, "overview")
            for name, path in (("runs", "/runs"), ("run", f"/runs/{summary.run_id}"),
                               ("person", f"/person?q={person}"),
                               ("audit", "/audit?outcome=written"),
                               ("dead-letters", "/dead-letters"), ("funnel", "/funnel")):
                page.goto(url + path)
                shoot(page, args.out, name)
            page.goto(url + "/model")
            page.get_by_test_id("preview").click()
            expect(page.get_by_test_id("diff")).to_be_visible()
            shoot(page, args.out, "model")
            page.get_by_test_id("publish").click()
            expect(page.get_by_test_id("effect")).to_be_visible()
            shoot(page, args.out, "model-publish-confirm")
            browser.close()
        admin.store.close()


if __name__ == "__main__":
    main()
