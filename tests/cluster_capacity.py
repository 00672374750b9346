"""Redis-side cost of a grant on the local cluster: claim.lua's CPU per claim (INFO
commandstats) at the batch sizes the coalescer sends, per master; then one hot campaign
through the service with "buckets" 1 and 3: how its scripts' CPU spreads over the
masters. Prints the figures docs/scaling.md uses:

    python tests/cluster_capacity.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from flashclaim.coupons import new_claim_id
from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.connection import sync_client
from flashclaim.store.scripts import ClaimRequest, load_sources

from cluster import LocalCluster
from conftest import ADMIN_TOKEN, NAMESPACE, app_client, server_binary
from helpers import claim as http_claim
from helpers import create_campaign, sync_campaign

KS = KeySpace(NAMESPACE)
CLAIMS = 20_000


def script_usec(node_client: Any, what: str = "usec") -> float:
    """CPU microseconds the node spent in scripts since its stats were reset (or, with
    what="calls", the script calls)."""
    stats = node_client.info("commandstats")
    return sum(float(stats[name][what]) for name in ("cmdstat_evalsha", "cmdstat_eval")
               if name in stats)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="flashclaim-capacity-") as root:
        cluster = LocalCluster(Path(root), server_binary("valkey"))
        cluster.start()
        try:
            rc: Any = sync_client(cluster.url)
            claim = rc.register_script(load_sources()["claim"])
            for batch in (1, 16, 64):
                campaign = f"hot{batch}"
                sync_campaign(rc, KS, campaign, stock=10**8, per_user_limit=1)
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
                asyncio.run(hot_campaign(cluster, rc, buckets))
            rc.close()
        finally:
            cluster.stop()


HOT_GRANTS = 15_000


async def hot_campaign(cluster: LocalCluster, rc: Any, buckets: int) -> None:
    """HOT_GRANTS grants of one campaign through the service (64 taps in flight): each
    master's script CPU, and the busiest master's CPU per grant of the campaign."""
    masters = cluster.nodes[:cluster.masters]
    for node in masters:
        with node.client() as m:
            m.config_resetstat()
    campaign = f"hot-b{buckets}"
    settings = Settings(redis_url=cluster.url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE,
                        max_in_flight=10_000)
    async with app_client(settings) as client:
        await create_campaign(client, id=campaign, stock=HOT_GRANTS, buckets=buckets)
        started = time.monotonic()

        async def worker(w: int) -> None:
            for i in range(w, HOT_GRANTS, 64):
                r = await http_claim(client, campaign, f"h{i}")
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
          f"through one in-process service on this 2-core machine; {sum(calls):,.0f} script "
          f"calls ({HOT_GRANTS / sum(calls):.1f} grants a call)", flush=True)


if __name__ == "__main__":
    main()
