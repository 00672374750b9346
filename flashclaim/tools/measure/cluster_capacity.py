"""Redis-side cost of a grant on the local cluster: claim.lua's CPU per claim (INFO
commandstats) at the batch sizes the coalescer sends, per master; then one hot campaign
through the service with "buckets" 1 and 3: how its scripts' CPU spreads over the
masters. Prints the figures docs/scaling.md uses:

    python -m flashclaim.tools.measure.cluster_capacity
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from flashclaim.campaigns import meta_fields
from flashclaim.claim.decision import ClaimRequest
from flashclaim.coupons import new_claim_id
from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import find_server_binary
from flashclaim.schemas.campaigns import campaign_spec
from flashclaim.store.connection import sync_client
from flashclaim.store.scripts import load_sources
from flashclaim.tools.children import serving
from flashclaim.tools.local_cluster import LocalCluster

NAMESPACE = "capacity"
ADMIN_TOKEN = "capacity-admin-token"
KS = KeySpace(NAMESPACE)
CLAIMS = 20_000


def create_campaign(r: Any, campaign_id: str, stock: int) -> None:
    """A campaign made with the real create script, straight in Redis."""
    now = int(time.time() * 1000)
    spec = campaign_spec({"id": campaign_id, "name": campaign_id, "stock": stock,
                          "coupons": [{"type": "cash", "value": 500}]}, now)
    keys = KS.campaign(campaign_id)
    r.register_script(load_sources()["create_campaign"])(
        keys=[keys.meta, keys.retired], args=meta_fields(spec, now))


def script_usec(node_client: Any, what: str = "usec") -> float:
    """CPU microseconds the node spent in scripts since its stats were reset (or, with
    what="calls", the script calls)."""
    stats = node_client.info("commandstats")
    return sum(float(stats[name][what]) for name in ("cmdstat_evalsha", "cmdstat_eval")
               if name in stats)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="flashclaim-capacity-") as root:
        cluster = LocalCluster(Path(root), find_server_binary())
        cluster.start()
        try:
            rc: Any = sync_client(cluster.url)
            claim = rc.register_script(load_sources()["claim"])
            for batch in (1, 16, 64):
                campaign = f"hot{batch}"
                create_campaign(rc, campaign, stock=10**8)
                keys = KS.campaign(campaign)
                node = rc.get_node_from_key(keys.meta)
                master = next(n for n in cluster.nodes if n.port == node.port)
                with master.client() as m:
                    m.config_resetstat()
                    started = time.monotonic()
                    for start in range(0, CLAIMS, batch):
                        users = [f"u{i}" for i in range(start, start + batch)]
                        requests = [ClaimRequest(c, "r:" + c, u, (), "app", None)
                                    for c, u in ((new_claim_id(campaign), u) for u in users)]
                        claim(keys=keys.script_keys() + [keys.rate_limit(u) for u in users],
                              args=[r.packed() for r in requests])
                    wall = time.monotonic() - started
                    usec = script_usec(m)
                per_grant = usec / CLAIMS
                print(f"batch {batch:>2}: {per_grant:6.1f} us of the master's CPU per grant "
                      f"(one core: {1e6 / per_grant:,.0f} grants/s); client-bound wall rate "
                      f"{CLAIMS / wall:,.0f} grants/s", flush=True)
            for buckets in (1, 3):
                asyncio.run(hot_campaign(cluster, Path(root), buckets))
            rc.close()
        finally:
            cluster.stop()


HOT_GRANTS = 15_000


async def hot_campaign(cluster: LocalCluster, root: Path, buckets: int) -> None:
    """HOT_GRANTS grants of one campaign through `flashclaim serve` (64 taps in flight):
    each master's script CPU, and the busiest master's CPU per grant of the campaign."""
    masters = cluster.nodes[:cluster.masters]
    for node in masters:
        with node.client() as m:
            m.config_resetstat()
    campaign = f"hot-b{buckets}"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with serving(root / f"serve-b{buckets}", "--admin-token", ADMIN_TOKEN,
                 "--namespace", NAMESPACE, redis_url=cluster.url) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            created = await client.post("/v1/admin/campaigns", headers=admin, json={
                "id": campaign, "name": campaign, "stock": HOT_GRANTS, "buckets": buckets,
                "coupons": [{"type": "cash", "value": 500}]})
            created.raise_for_status()
            started = time.monotonic()

            async def worker(w: int) -> None:
                for i in range(w, HOT_GRANTS, 64):
                    r = await client.post(f"/v1/campaigns/{campaign}/claims",
                                          headers={"X-User-Id": f"h{i}"})
                    assert r.status_code == 201, r.text
            await asyncio.gather(*(worker(w) for w in range(64)))
            wall = time.monotonic() - started
    usec, calls = [], []
    for node in masters:
        with node.client() as m:
            usec.append(script_usec(m))
            calls.append(script_usec(m, "calls"))
    busiest = max(usec)
    shares = ", ".join(f"{u / sum(usec):.0%}" for u in usec)
    print(f"buckets {buckets}: script CPU per master {shares}; busiest master "
          f"{busiest / HOT_GRANTS:5.1f} us per grant of the campaign (its cores cap the campaign "
          f"at {HOT_GRANTS * 1e6 / busiest:,.0f} grants/s); wall {HOT_GRANTS / wall:,.0f} grants/s "
          f"through one service process on this 2-core machine; {sum(calls):,.0f} script "
          f"calls ({HOT_GRANTS / sum(calls):.1f} grants a call)", flush=True)


if __name__ == "__main__":
    main()
