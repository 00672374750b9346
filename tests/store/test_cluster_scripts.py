"""Every Lua script on a real Redis Cluster: each call's keys share one hash slot, so a
cluster runs them unchanged (a key in another slot is refused with CROSSSLOT)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import ClusterNode, RedisCluster

from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.connection import connect, parse_cluster_url, sync_client
from flashclaim.tools.local_cluster import LocalCluster

from helpers import NAMESPACE, SyncRedis, sync_campaign, sync_grant, sync_use

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


def test_a_cluster_url_gives_the_cluster_client(cluster: LocalCluster) -> None:
    settings = Settings(redis_url=cluster.url, namespace=NAMESPACE)
    settings.validate()
    assert isinstance(connect(settings, cluster.url), AsyncRedisCluster)
    assert isinstance(sync_client(cluster.url), RedisCluster)
    address = parse_cluster_url("rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert (address.seeds, address.username, address.password, address.tls) == (
        [("10.0.0.1", 7000), ("10.0.0.2", 7001)], "app", "s@cret", True)


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://host",
                                 "redis+cluster://host:0", "redis+cluster://a:1,b",
                                 "redis://host:1"])
def test_bad_cluster_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_cluster_url(url)
