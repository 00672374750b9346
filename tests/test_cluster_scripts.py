"""Every Lua script on a real Redis Cluster: each call's keys share one hash slot, so a
cluster runs them unchanged (a key in another slot is refused with CROSSSLOT)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from flashclaim.keys import KeySpace

from cluster import LocalCluster
from conftest import NAMESPACE
from helpers import SyncRedis, sync_campaign, sync_grant, sync_use

pytestmark = pytest.mark.cluster
KS = KeySpace(NAMESPACE)


@pytest.fixture
def rc(cluster: LocalCluster) -> Iterator[SyncRedis]:
    client: SyncRedis = RedisCluster(startup_nodes=[
        ClusterNode("127.0.0.1", n.port) for n in cluster.nodes[:3]],  # type: ignore[no-untyped-call]
        decode_responses=True)
    yield client
    client.close()


def test_the_cluster_refuses_keys_of_two_slots(rc: SyncRedis) -> None:
    """What every test below relies on: a script touching two slots is refused."""
    with pytest.raises(redis.RedisClusterException, match="same key slot"):
        rc.eval("return 1", 2, "{a}x", "{b}y")  # refused by the client
    home = rc.get_node_from_key("a").name
    elsewhere = next(k for k in (f"k{i}" for i in range(1000))
                     if rc.get_node_from_key(k).name != home)
    with pytest.raises(redis.ResponseError):
        # a key the script names itself, on another shard: refused by the server
        rc.eval(f"return redis.call('GET', '{elsewhere}')", 1, "a")


def test_claims_and_redemptions_on_campaigns_spread_over_the_masters(rc: SyncRedis) -> None:
    campaigns = [f"spread{i}" for i in range(6)]
    masters = {rc.get_node_from_key(KS.campaign(c).meta).name for c in campaigns}
    assert len(masters) >= 2  # the campaigns live on different shards
    for campaign in campaigns:
        sync_campaign(rc, KS, campaign, stock=20, per_user_limit=1)
        assert sync_grant(rc, KS, campaign, [f"u{i}" for i in range(25)] + ["u0"]) == 20
        assert int(rc.hget(KS.campaign(campaign).meta, "remaining")) == 0
        assert rc.xlen(KS.campaign(campaign).stream) == 20
        [(_, fields)] = rc.xrange(KS.campaign(campaign).stream, count=1)
        coupon = fields["claim_id"] + "-1"
        assert sync_use(rc, KS, "redeem", coupon, "order-1", 100) == "used"
        assert sync_use(rc, KS, "redeem", coupon, "order-2", 100) == "coupon_used"
        assert sync_use(rc, KS, "release", coupon, "order-1") == "released"
