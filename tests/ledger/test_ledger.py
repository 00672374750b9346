"""The ledger consumer: every grant lands exactly once, through crashes; SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flashclaim.keys import KeySpace
from flashclaim.ledger.consumer import ConsumerOptions, LedgerConsumer, safe_trim_point
from flashclaim.ledger.db import SCHEMA_VERSION, Connection, Ledger, open_ledger
from flashclaim.ledger.reconcile import ledger_lag, reconcile_campaign
from flashclaim.ledger.retention import expire_ended
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.store.connection import sync_client
from flashclaim.stream import ClaimRecord
from flashclaim.tools import children

from helpers import NAMESPACE, SyncRedis, sync_campaign, sync_grant

KS = KeySpace(NAMESPACE)
StartLedger = Callable[..., "subprocess.Popen[bytes]"]
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.sqlite3"
    pg: str = request.getfixturevalue("pg_dsn")
    return pg


_OPEN: list[Ledger] = []


def db(dsn: str, tmp_path: Path) -> Ledger:
    """A ledger connection, closed when the test ends."""
    ledger = open_ledger(dsn, tmp_path)
    _OPEN.append(ledger)
    return ledger


@pytest.fixture(autouse=True)
def close_ledgers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def make_consumer(r: SyncRedis, dsn: str, tmp_path: Path, **options: int | str) -> LedgerConsumer:
    opts = ConsumerOptions(**{"block_ms": 50, "refresh_ms": 0, "trim_every_ms": 10**9,
                              **options})  # type: ignore[arg-type]
    return LedgerConsumer(r, db(dsn, tmp_path), KS, opts)


def drain(r: SyncRedis, *consumers: LedgerConsumer, campaigns: tuple[str, ...] = ("c1",),
          timeout: float = 30) -> None:
    """Run the consumers until the ledger group has acknowledged everything."""
    deadline = time.monotonic() + timeout
    while sum(ledger_lag(r, KS.campaign(c).stream, "ledger") for c in campaigns) > 0:
        assert time.monotonic() < deadline, "the ledger did not catch up"
        for c in consumers:
            c.run_once()


def assert_exactly_once(r: SyncRedis, dsn: str, tmp_path: Path, campaign: str,
                        granted: int, coupons_each: int = 1) -> None:
    ledger = db(dsn, tmp_path)
    rec = reconcile_campaign(r, ledger, KS, campaign)
    assert rec.ok and rec.lag == 0, rec.mismatches
    summary = ledger.summary(campaign)
    assert (summary.rows, summary.distinct_seqs, summary.min_seq, summary.max_seq) == (
        granted, granted, 1, granted)
    assert summary.coupons == granted * coupons_each


def test_every_claim_lands_once(sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    sync_campaign(sync_redis, KS, "c1", stock=40, coupons=[{"type": "cash", "value": 1}] * 3)
    sync_campaign(sync_redis, KS, "c2", stock=5)
    assert sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(50)]) == 40
    consumer = make_consumer(sync_redis, dsn, tmp_path)
    consumer.start()
    assert sync_grant(sync_redis, KS, "c2", ["a", "b"]) == 2  # a campaign found later
    drain(sync_redis, consumer, campaigns=("c1", "c2"))
    assert consumer.stats.written == 42
    assert_exactly_once(sync_redis, dsn, tmp_path, "c1", 40, coupons_each=3)
    assert_exactly_once(sync_redis, dsn, tmp_path, "c2", 2)
    rows = db(dsn, tmp_path).execute(
        "SELECT status, valid_until_ms - valid_from_ms FROM coupons WHERE campaign_id = ?",
        ("c2",))
    assert rows == [("unused", 30 * 86_400_000)] * 2


def test_a_redelivered_batch_is_a_no_op(sync_redis: SyncRedis, dsn: str, tmp_path: Path) -> None:
    sync_campaign(sync_redis, KS, "c1", stock=10)
    sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(10)])
    ledger = db(dsn, tmp_path)
    ledger.migrate()
    decoded = [ClaimRecord.decode(i, f) for i, f in entries_of(sync_redis, "c1")]
    assert ledger.write(decoded) == 10
    assert ledger.write(decoded) == 0
    assert ledger.write(decoded[3:5]) == 0
    assert ledger.summary("c1").rows == 10
    assert ledger.summary("c1").coupons == 10


def entries_of(r: SyncRedis, campaign: str) -> list[tuple[str, dict[str, str]]]:
    raw: list[tuple[str, dict[str, str]]] = r.xrange(KS.campaign(campaign).stream)
    return raw


def test_migration_is_idempotent(dsn: str, tmp_path: Path) -> None:
    ledger = db(dsn, tmp_path)
    assert ledger.migrate() == SCHEMA_VERSION
    assert ledger.migrate() == SCHEMA_VERSION
    assert ledger.execute("SELECT COUNT(*) FROM ledger_schema") == [(SCHEMA_VERSION,)]


def test_two_consumers_in_parallel(sync_redis: SyncRedis, dsn: str, tmp_path: Path,
                                   server: EmbeddedServer) -> None:
    sync_campaign(sync_redis, KS, "c1", stock=1500)
    stop = threading.Event()
    written: dict[str, int] = {}
    errors: list[BaseException] = []
    both_reading = threading.Barrier(3)  # the grants come once both consumers read

    def work(name: str) -> None:
        client = sync_client(server.url)
        ledger = open_ledger(dsn, tmp_path)  # each consumer its own connections
        consumer = LedgerConsumer(client, ledger, KS, ConsumerOptions(
            consumer=name, batch=20, block_ms=50, refresh_ms=0, trim_every_ms=10**9))
        try:
            consumer.start()
            consumer.run_once()
            both_reading.wait(30)
            while not stop.is_set():
                consumer.run_once()
        except BaseException as exc:
            errors.append(exc)
        finally:
            written[name] = consumer.stats.written
            ledger.close()
            client.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        both_reading.wait(30)
        assert sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(1500)]) == 1500
        deadline = time.monotonic() + 30
        while ledger_lag(sync_redis, KS.campaign("c1").stream, "ledger") > 0 and not errors:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert all(n > 0 for n in written.values()), written  # both took a share
    assert sum(written.values()) == 1500
    assert_exactly_once(sync_redis, dsn, tmp_path, "c1", 1500)


def test_poison_entries_go_to_the_dead_letter_stream(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path
) -> None:
    sync_campaign(sync_redis, KS, "c1", stock=10)
    stream = KS.campaign("c1").stream
    sync_grant(sync_redis, KS, "c1", ["a", "b"])
    sync_redis.xadd(stream, {"v": "1", "claim_id": "junk"})  # undecodable
    sync_redis.xadd(stream, {"v": "9", "claim_id": "x", "campaign_id": "c1", "user_id": "u",
                             "seq": "3", "claimed_at": "1", "channel": "", "idempotency_key": "",
                             "claim": "{}"})  # unknown version
    sync_grant(sync_redis, KS, "c1", ["c"])
    consumer = make_consumer(sync_redis, dsn, tmp_path)
    consumer.start()
    for _ in range(3):
        consumer.run_once()
    dead = sync_redis.xrange(KS.campaign("c1").dead_letter)
    assert len(dead) == 2 and consumer.stats.dead == 2
    assert "lacks" in dead[0][1]["dead_reason"] and "version" in dead[1][1]["dead_reason"]
    assert dead[0][1]["claim_id"] == "junk"  # the original fields travel along
    assert sync_redis.xpending(stream, "ledger")["pending"] == 0  # acknowledged
    assert consumer.stats.written == 3  # the rest flowed on
    assert db(dsn, tmp_path).summary("c1").rows == 3


def test_an_entry_delivered_too_often_is_dead_lettered(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path
) -> None:
    sync_campaign(sync_redis, KS, "c1")
    stream = KS.campaign("c1").stream
    sync_grant(sync_redis, KS, "c1", ["a"])
    consumer = make_consumer(sync_redis, dsn, tmp_path, claim_idle_ms=0, max_deliveries=3)
    consumer.start()
    for _ in range(4):  # a consumer that keeps dying on this entry: read, never acknowledged
        sync_redis.xreadgroup("ledger", "crashy", {stream: "0" if _ else ">"}, count=1)
    consumer.take_over_abandoned()
    assert consumer.stats.dead == 1 and consumer.stats.written == 0
    [(_, fields)] = sync_redis.xrange(KS.campaign("c1").dead_letter)
    assert "delivered 5 times" in fields["dead_reason"]


def test_retention_never_trims_what_a_group_has_not_acknowledged(
    sync_redis: SyncRedis, tmp_path: Path
) -> None:
    sync_campaign(sync_redis, KS, "c1", stock=10)
    stream = KS.campaign("c1").stream
    sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(10)])
    consumer = make_consumer(sync_redis, f"sqlite:///{tmp_path}/l.db", tmp_path, retain_ms=0)
    consumer.start()
    drain(sync_redis, consumer)
    sync_redis.xgroup_create(stream, "other", id="0")
    read = sync_redis.xreadgroup("other", "o1", {stream: ">"}, count=5)[0][1]
    consumer.trim()
    assert sync_redis.xlen(stream) == 10  # "other" still holds 5 pending
    sync_redis.xack(stream, "other", *[e[0] for e in read[:3]])
    consumer.trim()
    remaining = [e[0] for e in sync_redis.xrange(stream)]
    assert remaining[0] == read[3][0] and len(remaining) == 7
    assert safe_trim_point(sync_redis, stream) == read[3][0]
    sync_redis.xgroup_create(stream, "late", id="0")  # a group that has read nothing
    consumer.trim()
    assert sync_redis.xlen(stream) == 7
    rec = reconcile_campaign(sync_redis, db(f"sqlite:///{tmp_path}/l.db", tmp_path),
                             KS, "c1")
    assert rec.ok, rec.mismatches  # trimmed entries are still accounted for


@pytest.fixture
def ledger_process(server: EmbeddedServer, tmp_path: Path) -> Iterator[StartLedger]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(dsn: str, consumer: str, crash_after_commit: bool = False
              ) -> subprocess.Popen[bytes]:
        env = children.clean_env()
        # The crashing consumer is the real one with a ledger that dies (like kill -9)
        # right after its first commit, before the XACK: see crashing_ledger.py.
        program = [str(TESTS / "crashing_ledger.py")] if crash_after_commit else ["-m",
                                                                                  "flashclaim"]
        log = open(tmp_path / f"ledger-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, *program, "ledger", "--redis-url", server.url,
             "--namespace", NAMESPACE, "--ledger-dsn", dsn, "--consumer", consumer,
             "--block-ms", "100", "--claim-idle-ms", "300", "--batch", "50"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def wait_rows(dsn: str, tmp_path: Path, at_least: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    ledger = db(dsn, tmp_path)
    while True:
        try:
            rows = ledger.summary("c1").rows
        except Exception:  # tables not created yet
            ledger.close()
            rows = 0
        if rows >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def test_kill_between_commit_and_ack(sync_redis: SyncRedis, dsn: str, tmp_path: Path,
                                     ledger_process: StartLedger) -> None:
    start = ledger_process
    sync_campaign(sync_redis, KS, "c1", stock=200)
    assert sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(200)]) == 200
    crashed = start(dsn, "worker-1", crash_after_commit=True)
    assert crashed.wait(30) == 137
    pending = sync_redis.xpending(KS.campaign("c1").stream, "ledger")["pending"]
    rows = wait_rows(dsn, tmp_path, 1)
    assert pending == 50 and rows == 50  # committed, never acknowledged
    again = start(dsn, "worker-1")
    assert wait_rows(dsn, tmp_path, 200) == 200
    deadline = time.monotonic() + 30
    while ledger_lag(sync_redis, KS.campaign("c1").stream, "ledger"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again.send_signal(signal.SIGTERM)
    assert again.wait(30) == 0  # graceful
    assert_exactly_once(sync_redis, dsn, tmp_path, "c1", 200)


def test_kill_9_mid_stream_then_another_consumer_takes_over(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path, ledger_process: StartLedger
) -> None:
    start = ledger_process
    sync_campaign(sync_redis, KS, "c1", stock=3000)
    first = start(dsn, "doomed")
    assert sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(3000)]) == 3000
    wait_rows(dsn, tmp_path, 100)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert wait_rows(dsn, tmp_path, 0) < 3000  # it died mid-stream
    start(dsn, "successor")  # a new name: the doomed one's pending entries are taken over
    assert wait_rows(dsn, tmp_path, 3000) == 3000
    deadline = time.monotonic() + 30
    while ledger_lag(sync_redis, KS.campaign("c1").stream, "ledger"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert_exactly_once(sync_redis, dsn, tmp_path, "c1", 3000)


def run_in_thread(consumer: LedgerConsumer) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def target() -> None:
        try:
            outcome.append(consumer.run())
        except Exception as exc:  # the test asserts there was none
            outcome.append(exc)
    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_outage_warnings_are_rate_limited_and_a_stop_while_waiting_is_clean(
    sync_redis: SyncRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = []

    def refuse() -> Connection:
        attempts.append(1)
        raise ConnectionRefusedError("database down")

    down = Ledger(refuse, "?", lambda exc: True, (), None)
    consumer = LedgerConsumer(sync_redis, down, KS, ConsumerOptions(
        db_retry_ms=1, warn_every_ms=60_000))
    thread, outcome = run_in_thread(consumer)
    deadline = time.monotonic() + 30
    while len(attempts) < 50:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    consumer.request_stop()
    thread.join(30)
    assert outcome and isinstance(outcome[0], type(consumer.stats)), outcome  # no exception
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_progress_is_logged(sync_redis: SyncRedis, dsn: str, tmp_path: Path,
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="flashclaim.ledger")
    sync_campaign(sync_redis, KS, "c1", stock=5)
    assert sync_grant(sync_redis, KS, "c1", [f"u{i}" for i in range(5)]) == 5
    consumer = LedgerConsumer(sync_redis, db(dsn, tmp_path), KS,
                              ConsumerOptions(block_ms=20, progress_ms=0))
    thread, _ = run_in_thread(consumer)
    deadline = time.monotonic() + 30
    while not any("5 claims written" in r.getMessage() and "lag 0" in r.getMessage()
                  for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)
    consumer.request_stop()
    thread.join(30)


def test_ended_campaigns_leave_redis_only_once_the_ledger_has_them(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path
) -> None:
    """Retention 0: a campaign ended with records still unacknowledged stays; once the
    consumer has written and acknowledged them, its keys and index entries go, while
    an open campaign and the ledger's rows stay."""
    sync_campaign(sync_redis, KS, "over", stock=10)
    sync_campaign(sync_redis, KS, "open", stock=10)
    sync_grant(sync_redis, KS, "over", ["a", "b"])
    keys = KS.campaign("over")
    sync_redis.zadd(KS.campaign_ends, {"over": 1})  # ended long ago
    sync_redis.hset(keys.meta, "ends_at", 1)
    ledger = db(dsn, tmp_path)
    assert expire_ended(sync_redis, KS, ledger, 0, 10**13) == []  # nobody has read the records
    consumer = make_consumer(sync_redis, dsn, tmp_path)
    consumer.start()
    consumer.run_once()  # written and acknowledged
    assert expire_ended(sync_redis, KS, ledger, 10**12, 10**12) == []  # within its retention
    # its coupons are still valid (the checkout system may redeem them): it stays
    assert expire_ended(sync_redis, KS, ledger, 0, int(time.time() * 1000)) == []
    slot = keys.coupon_slot()
    assert len(sync_redis.hgetall(slot.coupons)) == 2
    assert expire_ended(sync_redis, KS, ledger, 0, 10**13) == ["over"]
    assert not any(v.startswith("over\x1f") for v in sync_redis.hvals(slot.coupons))
    assert not any(sync_redis.exists(k) for k in keys.all_keys())
    assert "over" not in sync_redis.zrange(KS.registry, 0, -1)
    assert sync_redis.exists(KS.campaign("open").meta)
    assert db(dsn, tmp_path).summary("over").rows == 2
    sync_grant(sync_redis, KS, "open", ["c"])
    consumer.run_once()  # the removed stream does not trip the consumer
    consumer.run_once()
    assert db(dsn, tmp_path).summary("open").rows == 1


def dead_lettered_after_a_conflict(r: SyncRedis, dsn: str, tmp_path: Path) -> LedgerConsumer:
    """Campaign "again": three grants, the second of which the ledger cannot take (a row of
    an older campaign under the same id holds its seq, so its coupons fail the foreign key):
    written one by one, it fails until it is dead-lettered. The other two are written."""
    sync_campaign(r, KS, "again", stock=10)
    assert sync_grant(r, KS, "again", ["a", "b", "c"]) == 3
    ledger = db(dsn, tmp_path)
    ledger.migrate()
    ledger.execute("INSERT INTO claims (claim_id, campaign_id, user_id, seq, claimed_at_ms,"
                   " stream_entry_id, claim_json, recorded_at_ms) VALUES"
                   " ('last-year', 'again', 'old', 2, 1, '1-0', '{}', 1)")
    consumer = make_consumer(r, dsn, tmp_path, claim_idle_ms=0)
    consumer.start()
    for _ in range(8):
        consumer.run_once()
        consumer.take_over_abandoned()
    assert consumer.stats.dead == 1
    return consumer


def test_a_dead_lettered_claim_is_a_mismatch_not_a_consistent_ledger(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path
) -> None:
    dead_lettered_after_a_conflict(sync_redis, dsn, tmp_path)
    rec = reconcile_campaign(sync_redis, db(dsn, tmp_path), KS, "again")
    assert not rec.ok
    assert any("dead-lettered entries are not in the ledger" in m for m in rec.mismatches), \
        rec.mismatches


def test_retention_keeps_a_campaign_whose_dead_letters_the_ledger_lacks(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path
) -> None:
    dead_lettered_after_a_conflict(sync_redis, dsn, tmp_path)
    keys = KS.campaign("again")
    sync_redis.zadd(KS.campaign_ends, {"again": 1})  # ended long ago
    sync_redis.hset(keys.meta, "ends_at", 1)
    ledger = db(dsn, tmp_path)
    assert expire_ended(sync_redis, KS, ledger, 0, 10**13) == []
    assert sync_redis.xlen(keys.dead_letter) == 1 and sync_redis.exists(keys.stream)
    # the operator repairs it (here: the conflicting row goes), and the campaign may leave
    ledger.execute("DELETE FROM claims WHERE claim_id = 'last-year'")
    dead = sync_redis.xrange(keys.dead_letter)
    ledger.write([ClaimRecord.decode(dead[0][1]["dead_entry_id"], dead[0][1])])
    assert expire_ended(sync_redis, KS, ledger, 0, 10**13) == ["again"]


def test_a_retired_campaign_id_stays_taken(
    sync_redis: SyncRedis, dsn: str, tmp_path: Path
) -> None:
    """Re-creating `double11` after retention removed it would restart its seqs at 1, which
    the ledger holds already: its claims would be lost as "redeliveries"."""
    sync_campaign(sync_redis, KS, "double11", stock=10)
    sync_grant(sync_redis, KS, "double11", ["a", "b"])
    consumer = make_consumer(sync_redis, dsn, tmp_path)
    consumer.start()
    consumer.run_once()
    sync_redis.zadd(KS.campaign_ends, {"double11": 1})
    assert expire_ended(sync_redis, KS, db(dsn, tmp_path), 0, 10**13) == ["double11"]
    with pytest.raises(AssertionError):
        sync_campaign(sync_redis, KS, "double11", stock=10)  # the create script answers -1
    assert not sync_redis.exists(KS.campaign("double11").meta)
