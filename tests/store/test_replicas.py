"""Replica durability: with FLASHCLAIM_REPLICA_ACKS a claim is answered only once that many
replicas have it; fewer in time is a 503, and the claim (decided) is replayed on retry."""

from __future__ import annotations

import dataclasses

import pytest

from flashclaim.settings import Settings, SettingsError
from flashclaim.tools.local_cluster import LocalCluster

from helpers import app_client, claim, create_campaign


async def test_claims_wait_for_a_replica_on_the_cluster(
    settings: Settings, cluster: LocalCluster,
) -> None:
    s = dataclasses.replace(settings, redis_url=cluster.url, replica_acks=1)
    async with app_client(s) as client:
        c = await create_campaign(client, stock=20)
        answers = [(await claim(client, c["id"], f"u{i}")).status_code for i in range(25)]
        assert answers == [201] * 20 + [410] * 5


async def test_too_few_replicas_is_a_503_and_the_retry_replays(settings: Settings) -> None:
    """The single test server has no replica: WAIT 1 times out."""
    waiting = dataclasses.replace(settings, replica_acks=1, replica_timeout_ms=50)
    async with app_client(waiting) as client:
        c = await create_campaign(client, stock=5)
        refused = await claim(client, c["id"], "u1", key="tap-1")
        assert (refused.status_code, refused.json()["error"]) == (503, "unavailable")
    async with app_client(settings) as client:  # decided all the same: the retry replays it
        again = await claim(client, c["id"], "u1", key="tap-1")
        assert again.status_code == 200 and again.json()["user_id"] == "u1"


@pytest.mark.parametrize(("acks", "timeout_ms"), [(-1, 100), (17, 100), (1, 0), (1, 500)])
def test_bad_replica_settings_are_refused(acks: int, timeout_ms: int) -> None:
    with pytest.raises(SettingsError):
        Settings(replica_acks=acks, replica_timeout_ms=timeout_ms).validate()
