"""Redis-side cost of a grant on the local cluster: claim.lua's CPU per claim (INFO
commandstats) at the batch sizes the coalescer sends, per master. Prints the figures
docs/scaling.md uses:

    python tests/cluster_capacity.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from flashclaim.coupons import new_claim_id
from flashclaim.keys import KeySpace
from flashclaim.store.connection import sync_client
from flashclaim.store.scripts import ClaimRequest, load_sources

from cluster import LocalCluster
from conftest import NAMESPACE, server_binary
from helpers import sync_campaign

KS = KeySpace(NAMESPACE)
CLAIMS = 20_000


def script_usec(node_client: Any) -> float:
    """CPU microseconds the node spent in scripts since its stats were reset."""
    stats = node_client.info("commandstats")
    return sum(float(stats[name]["usec"]) for name in ("cmdstat_evalsha", "cmdstat_eval")
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
            rc.close()
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
