"""Real servers for every test: Valkey (the embedded default) and Debian's Redis 7,
each started once per session on a free port in a temp dir, flushed before each test."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from playwright.sync_api import Browser, Page, sync_playwright
from redis.asyncio import Redis

from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.settings import Settings
from flashclaim.store.connection import sync_client, tool_client
from flashclaim.store.scripts import Scripts
from flashclaim.tools import children
from flashclaim.tools.children import serving
from flashclaim.tools.local_cluster import LocalCluster

from helpers import (
    ADMIN_TOKEN,
    CHECKOUT_TOKEN,
    CODE_SECRET,
    EVENTS_TOKEN,
    NAMESPACE,
    app_client,
    server_binary,
    start_server,
)
from pages_kit import TOKEN, chromium_path
from pg import PostgresServer


def flush(server: EmbeddedServer) -> None:
    with redis.Redis.from_url(server.url) as r:
        r.flushall()
        r.script_flush()


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """3 masters and 3 replicas of valkey-server, started on first use in the session."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), server_binary("valkey"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(local_cluster: LocalCluster) -> LocalCluster:
    local_cluster.flush()
    return local_cluster


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_server(tmp_path_factory.mktemp("valkey"), "valkey")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = start_server(tmp_path_factory.mktemp("redis7"), "redis")
    yield server
    server.stop()


@pytest.fixture(params=["valkey", "redis7"])
def any_server(request: pytest.FixtureRequest) -> EmbeddedServer:
    """The Lua suite runs once on each server kind."""
    server: EmbeddedServer = request.getfixturevalue(request.param)
    flush(server)
    return server


@pytest.fixture
def server(request: pytest.FixtureRequest, backend: str, valkey: EmbeddedServer) -> Any:
    """The Redis the test runs on, flushed: the embedded Valkey, or (for the modules in
    ALSO_ON_CLUSTER, a second time) the local cluster. Tests read only its `url`."""
    if backend == "cluster":
        cluster: LocalCluster = request.getfixturevalue("cluster")
        return ClusterAsServer(cluster.url)
    flush(valkey)
    return valkey


@dataclass(frozen=True)
class ClusterAsServer:
    url: str


# These modules run twice: on one Valkey and on the local cluster (3 masters, 3
# replicas). Their tests build on `server`, `settings`, `redis_client` and `sync_redis`.
ALSO_ON_CLUSTER = {
    "test_admin_api", "test_campaign_model", "test_checkout", "test_claims_api", "test_codes",
    "test_expiry", "test_grants", "test_ledger", "test_live_metrics", "test_reconcile",
    "test_reconcile_redemptions", "test_report", "test_templates_blocklist", "test_wallet",
    "test_buckets", "test_orders", "test_report_roi", "test_fair_sale", "test_risk",
    "test_dispatcher", "test_outbox_feed", "test_rules", "test_schedules", "test_roles",
    "test_audit", "test_audit_ledger", "test_budget", "test_cap_groups",
    "test_coupon_kinds", "test_holdout",
}


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "single"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.module.__name__ in ALSO_ON_CLUSTER:
        metafunc.parametrize("backend", ["single", "cluster"], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`-m cluster` selects every run on the cluster."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "cluster":
            item.add_marker(pytest.mark.cluster)


@pytest.fixture
def keyspace() -> KeySpace:
    return KeySpace(NAMESPACE)


@pytest.fixture
async def redis_client(server: EmbeddedServer) -> AsyncIterator[Redis]:
    client = tool_client(server.url, timeout_s=10)
    yield client
    await client.aclose()


@pytest.fixture
def settings(server: EmbeddedServer) -> Settings:
    # The concurrency tests put 2,600 claims in flight in one process: above the default
    # shedding cap (its own test is in test_faults.py).
    return Settings(redis_url=server.url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE,
                    max_in_flight=10_000, code_secret=CODE_SECRET,
                    checkout_token=CHECKOUT_TOKEN, events_token=EVENTS_TOKEN)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


@pytest.fixture
async def scripts_on_any(any_server: EmbeddedServer) -> AsyncIterator[tuple[Redis, Scripts]]:
    client = Redis.from_url(any_server.url, decode_responses=True)
    yield client, Scripts(client)
    await client.aclose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: its root-only parents would lock out the postgres user.
    root = Path(tempfile.mkdtemp(prefix="flashclaim-pg-"))
    server = PostgresServer(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_dsn(postgres: PostgresServer) -> str:
    """A fresh database on the session's PostgreSQL server."""
    name = "ledger_" + secrets.token_hex(4)
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def sync_redis(server: EmbeddedServer) -> Iterator[redis.Redis]:
    client = sync_client(server.url)
    yield client
    client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """"sqlite" for the default (SQLite in the data dir), else a PostgreSQL DSN."""
    if request.param == "sqlite":
        return "sqlite"
    pg: str = request.getfixturevalue("pg_dsn")
    return pg


# ---- the browser tests (tests/web/test_pages.py, test_dashboard.py) ----------------------





@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def base(tmp_path: Path, server: EmbeddedServer) -> Iterator[str]:
    with serving(tmp_path / "data", "--admin-token", TOKEN, redis_url=server.url) as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    p = context.new_page()
    errors: list[str] = []
    # (an API's 4xx answer is logged as "Failed to load resource": expected, not an error)
    p.on("console", lambda m: errors.append(m.text) if m.type == "error"
         and not m.text.startswith("Failed to load resource") else None)
    p.on("pageerror", lambda e: errors.append(str(e)))
    missing: list[str] = []  # a page's own files (its icon too) are all there
    p.on("response", lambda r: missing.append(r.url) if r.status == 404
         and "/v1/" not in r.url else None)
    yield p
    context.close()
    assert not errors, errors  # no script error, no CSP violation
    assert not missing, missing


@pytest.fixture
def base_with_ledger(tmp_path: Path, server: EmbeddedServer) -> Iterator[str]:
    """The service and a ledger consumer on one data directory (the wallet reads the ledger)."""
    data = tmp_path / "data"
    with serving(data, "--admin-token", TOKEN, redis_url=server.url) as url:
        env = children.clean_env(FLASHCLAIM_REDIS_URL=server.url, FLASHCLAIM_DATA_DIR=str(data))
        ledger = children.start(["ledger", "--block-ms", "100"], env, tmp_path / "ledger.log")
        try:
            yield url
        finally:
            children.stop(ledger)
