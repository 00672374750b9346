"""/metrics shows live campaigns only (bounded labels), the ledger's lag and its throughput."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis as SyncRedis

from flashclaim.settings import Settings
from flashclaim.store import live

from helpers import ADMIN, app_client, claim, consume, create_campaign, iso, use


def sample(text: str, metric: str, labels: str = "") -> float | None:
    """The value of one sample, None when it is absent."""
    prefix = metric + (f"{{{labels}}}" if labels else "") + " "
    values = [line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)]
    return float(values[0]) if values else None


def campaigns_labelled(text: str) -> set[str]:
    return set(re.findall(r'^flashclaim_live_campaign_granted\{campaign="([^"]+)"\}', text,
                          re.MULTILINE))


async def test_live_campaigns_lag_and_throughput(
    settings: Settings, sync_redis: SyncRedis, tmp_path: Path,
) -> None:
    s = dataclasses.replace(settings, data_dir=tmp_path)
    async with app_client(s) as client:
        live = (await create_campaign(client, stock=5))["id"]
        later = (await create_campaign(client, starts_at=iso(timedelta(hours=1))))["id"]
        over = (await create_campaign(client))["id"]
        coupon = (await claim(client, live, "m1")).json()["coupons"][0]["coupon_id"]
        await claim(client, live, "m2")
        await claim(client, over, "m3")
        assert (await client.post(f"/v1/admin/campaigns/{over}/end",
                                  headers=ADMIN)).status_code == 200

        text = (await client.get("/metrics")).text
        assert campaigns_labelled(text) == {live}  # not the scheduled one, not the ended one
        assert later not in text and over not in text
        label = f'campaign="{live}"'
        assert sample(text, "flashclaim_live_campaign_granted", label) == 2
        assert sample(text, "flashclaim_live_campaign_remaining", label) == 3
        assert sample(text, "flashclaim_ledger_lag_entries", label) == 2  # no consumer yet

        consume(sync_redis, None, tmp_path)
        assert (await use(client, coupon, "redeem", "o-1", 100)).status_code == 200
        text = (await client.get("/metrics")).text
        assert sample(text, "flashclaim_ledger_lag_entries", label) == 0
        assert sample(text, "flashclaim_ledger_event_lag_entries") == 1
        assert sample(text, "flashclaim_ledger_claims_written_total", 'group="ledger"') == 3

        consume(sync_redis, None, tmp_path)
        consume(sync_redis, None, tmp_path)  # a second consumer pass writes nothing new
        text = (await client.get("/metrics")).text
        assert sample(text, "flashclaim_ledger_event_lag_entries") == 0
        assert sample(text, "flashclaim_ledger_events_applied_total", 'group="ledger"') == 1
        assert sample(text, "flashclaim_ledger_claims_written_total", 'group="ledger"') == 3


async def test_campaign_labels_are_bounded(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "MAX_LIVE_CAMPAIGNS", 3)
    s = dataclasses.replace(settings, data_dir=tmp_path)
    async with app_client(s) as client:
        ids = [(await create_campaign(client))["id"] for _ in range(5)]
        labelled = campaigns_labelled((await client.get("/metrics")).text)
        assert len(labelled) == 3 and labelled <= set(ids)
