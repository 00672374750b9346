"""Which listener serves which page (the browser tests are in test_pages.py: Playwright's
synchronous driver and this module's event loop do not share a module)."""

from __future__ import annotations

from dataclasses import replace

from flashclaim.settings import Settings

from helpers import app_client


async def test_each_listener_serves_its_own_page(settings: Settings) -> None:
    """With the listeners split, the coupon centre is public and the dashboard admin-only."""
    for role, present, absent in (("public", "/", "/admin"), ("admin", "/admin", "/")):
        async with app_client(replace(settings, role=role)) as c:
            assert (await c.get(present)).status_code == 200, (role, present)
            assert (await c.get(absent)).status_code == 404, (role, absent)
            assert (await c.get("/static/style.css")).status_code == 200, role
