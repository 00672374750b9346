"""What the browser tests share besides their fixtures (tests/web/conftest.py): screenshots
for docs/, the page's token, and small API helpers."""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page

TOKEN = "pages-admin-token"


ADMIN = {"Authorization": f"Bearer {TOKEN}"}


DOCS = Path(__file__).resolve().parents[1] / "docs"


def screenshot(page: Page | Locator, name: str, tmp_path: Path) -> None:
    """Every run takes it (of the page, or of one element); FLASHCLAIM_UPDATE_SCREENSHOTS=1
    also replaces the one in docs/."""
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get("FLASHCLAIM_UPDATE_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name))


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is needed: apt-get install chromium (.ci/test does)")
    return found


def campaign(base: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "Double 11", "stock": 100,
            "coupons": [{"type": "threshold", "value": 2000, "min_spend": 10000}], **fields}
    r = httpx.post(base + "/v1/admin/campaigns", headers=ADMIN, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def card(page: Page, campaign_id: str) -> Any:
    return page.locator(f'article[data-id="{campaign_id}"]')


def one_code(base: str, campaign_id: str) -> str:
    """A single-use code of the campaign, generated and exported through the admin API."""
    made = httpx.post(f"{base}/v1/admin/campaigns/{campaign_id}/codes", headers=ADMIN,
                      json={"count": 1})
    assert made.status_code == 202, made.text
    deadline = time.monotonic() + 30
    while not all(b["state"] == "ready" for b in httpx.get(
            f"{base}/v1/admin/campaigns/{campaign_id}/codes", headers=ADMIN).json()["batches"]):
        assert time.monotonic() < deadline, "the code batch was never ready"
        time.sleep(0.05)
    export = httpx.get(f"{base}/v1/admin/campaigns/{campaign_id}/codes.csv", headers=ADMIN)
    return next(csv.DictReader(io.StringIO(export.text)))["code"]
