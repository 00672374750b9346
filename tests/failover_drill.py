"""The failover drill: under load, a master loses its replica link (a network blip: its
replication connection is killed) and 200 ms later it is killed -9; its replica takes over
with whatever it had. Then the claims answered 201 but gone from the campaign's stream are
counted. The old master is restarted and rejoins as a replica, so a shard that needs a
replica acknowledgement can take claims again.

Used by tests/system/test_failover.py (with replica acks on, the count must be 0) and runnable
on its own to print both figures for docs/reliability.md:

    python tests/failover_drill.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from flashclaim.keys import KeySpace
from flashclaim.settings import Settings
from flashclaim.store.connection import sync_client
from flashclaim.tools.local_cluster import LocalCluster

from helpers import ADMIN_TOKEN, NAMESPACE, app_client, server_binary

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WORKERS = 32


@dataclass
class DrillResult:
    acknowledged: int  # claims answered 201
    lost: int  # of those, not in the campaign's stream after the failover
    refused: int  # answers other than 201 (503 while the shard fails over)
    promoted_s: float  # from the kill to the replica serving the slots
    back_s: float  # from the kill to the first 201 after it


def wait_for_promotion(cluster: LocalCluster, replica_port: int, timeout: float = 30) -> None:
    """Until the replica serves as a master (the cluster voted it in) and the cluster is ok."""
    survivor = next(n for n in cluster.nodes[1:] if n.port != replica_port)
    deadline = time.monotonic() + timeout
    with survivor.client() as c:
        while time.monotonic() < deadline:
            flags = next((line.split()[2] for line in
                          c.execute_command("CLUSTER", "NODES").splitlines()
                          if f":{replica_port}@" in line), "")
            if "master" in flags.split(",") and c.cluster("info")["cluster_state"] == "ok":
                return
            time.sleep(0.05)
    raise RuntimeError(f"no failover within {timeout:.0f}s")


def campaign_on(cluster: LocalCluster, node_port: int) -> str:
    """A campaign id whose hash slot the master on node_port serves."""
    with sync_client(cluster.url) as rc:
        keyspace = KeySpace(NAMESPACE)
        return next(c for c in (f"drill{i}" for i in range(10_000))
                    if rc.get_node_from_key(keyspace.campaign(c).meta).port == node_port)


async def run_drill(root: Path, replica_acks: int, load_s: float = 1.5,
                    after_s: float = 1.5) -> DrillResult:
    cluster = LocalCluster(root, server_binary("valkey"))
    cluster.start()
    try:
        victim = cluster.nodes[0]
        campaign = campaign_on(cluster, victim.port)
        settings = Settings(redis_url=cluster.url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE,
                            max_in_flight=10_000, redis_timeout_ms=1000,
                            replica_acks=replica_acks, replica_timeout_ms=500)
        acknowledged: set[str] = set()
        refused = 0
        killed_at: float | None = None
        back_at: float | None = None
        stop = False
        back = asyncio.Event()  # set by the first 201 after the kill
        async with app_client(settings) as client:
            created = await client.post("/v1/admin/campaigns", headers=ADMIN, json={
                "id": campaign, "name": "drill", "stock": 10**8,
                "rate_limit": {"max": 1000, "per_seconds": 1},
                "coupons": [{"type": "cash", "value": 100}]})
            created.raise_for_status()

            async def worker(w: int) -> None:
                nonlocal refused, back_at
                n = 0
                while not stop:
                    n += 1
                    user = f"w{w}-{n}"
                    sent = time.monotonic()
                    try:
                        r = await client.post(f"/v1/campaigns/{campaign}/claims",
                                              headers={"X-User-Id": user})
                    except httpx.HTTPError:
                        refused += 1
                        continue
                    if r.status_code == 201:
                        acknowledged.add(r.json()["claim_id"])
                        if killed_at is not None and sent > killed_at and back_at is None:
                            back_at = time.monotonic()
                            back.set()
                    else:
                        refused += 1
                        await asyncio.sleep(0.01)

            tasks = [asyncio.create_task(worker(w)) for w in range(WORKERS)]
            await asyncio.sleep(load_s)
            # The replica falls behind (stopped, its link cut, so it cannot reconnect), the
            # master goes on for 200 ms, then dies; the replica wakes up and is promoted.
            replica = cluster.nodes[cluster.masters]  # the first master's replica
            assert replica.process is not None
            os.kill(replica.process.pid, signal.SIGSTOP)
            with victim.client() as master:
                master.execute_command("CLIENT", "KILL", "TYPE", "replica")
            await asyncio.sleep(0.2)
            victim.kill()  # kill -9: no shutdown, no last fsync
            killed_at = time.monotonic()
            os.kill(replica.process.pid, signal.SIGCONT)
            await asyncio.to_thread(wait_for_promotion, cluster, replica.port)
            promoted_s = time.monotonic() - killed_at
            victim.start(cluster.binary)  # rejoins as a replica of the new master
            with contextlib.suppress(TimeoutError):  # reported as back_s = 30+
                await asyncio.wait_for(back.wait(), 30)
            await asyncio.sleep(after_s)
            stop = True
            await asyncio.gather(*tasks)
        with sync_client(cluster.url) as rc:
            stream = KeySpace(NAMESPACE).campaign(campaign).stream
            recorded = {fields["claim_id"] for _, fields in rc.xrange(stream)}
        return DrillResult(len(acknowledged), len(acknowledged - recorded), refused,
                           promoted_s, (back_at or time.monotonic()) - killed_at)
    finally:
        cluster.stop()


def main() -> None:
    for acks in (0, 1):
        with tempfile.TemporaryDirectory(prefix="flashclaim-drill-") as root:
            result = asyncio.run(run_drill(Path(root), acks))
        print(f"FLASHCLAIM_REPLICA_ACKS={acks}: {result.acknowledged} claims answered 201, "
              f"{result.lost} lost after the failover, {result.refused} refused meanwhile; "
              f"replica promoted {result.promoted_s:.1f}s and claims granted again "
              f"{result.back_s:.1f}s after the kill", flush=True)


if __name__ == "__main__":
    main()
