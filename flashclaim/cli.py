"""The `flashclaim` command line."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from flashclaim.embedded import EmbeddedServer
from flashclaim.settings import Settings, SettingsError

log = logging.getLogger("flashclaim")


def _admin_token(settings: Settings) -> str:
    """The configured token, else one generated once and kept in the data directory."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(24)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env(
        redis_url=args.redis_url, data_dir=args.data_dir, namespace=args.namespace,
        admin_token=args.admin_token,
    )
    # Workers are separate processes: they read their settings from the environment.
    os.environ["FLASHCLAIM_ADMIN_TOKEN"] = _admin_token(settings)
    if not settings.admin_token:
        log.info("admin token generated and kept in %s", settings.data_dir / "admin-token")
    embedded = None
    redis_url = settings.redis_url
    if redis_url is None:
        embedded = EmbeddedServer(settings.data_dir)
        redis_url = embedded.start()
        log.info("embedded server on 127.0.0.1:%d, data in %s (AOF, fsync always)",
                 embedded.port, settings.data_dir / "redis")
    os.environ["FLASHCLAIM_REDIS_URL"] = redis_url
    os.environ["FLASHCLAIM_DATA_DIR"] = str(settings.data_dir)
    os.environ["FLASHCLAIM_NAMESPACE"] = settings.namespace
    if args.workers > 1:  # every worker's /metrics reports the sum over all workers
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    admin = None
    admin_port = args.admin_port or int(os.environ.get("FLASHCLAIM_ADMIN_PORT", "0") or 0)
    if admin_port:
        # The admin API on its own listener (bind it to a private interface); the public
        # one serves no admin route at all.
        admin = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "flashclaim.app:create_app", "--factory",
             "--host", args.admin_host, "--port", str(admin_port), "--no-access-log"],
            env={**os.environ, "FLASHCLAIM_ROLE": "admin"})
        os.environ["FLASHCLAIM_ROLE"] = "public"
        log.info("admin API on %s:%d; not on the public port", args.admin_host, admin_port)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; turn that into
    # SystemExit so the `finally` below still stops the embedded server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run(
            "flashclaim.app:create_app", factory=True, host=args.host, port=args.port,
            workers=args.workers, loop="uvloop", http="httptools", access_log=False,
            log_level="info",
        )
    finally:
        if admin is not None:
            admin.terminate()
            admin.wait(30)
        if embedded is not None:
            embedded.stop()
    return 0


def _redis_url(settings: Settings) -> str:
    """FLASHCLAIM_REDIS_URL, else the embedded server `serve` runs on this data directory."""
    from flashclaim.embedded import running_url

    url = settings.redis_url or running_url(settings.data_dir)
    if url is None:
        raise SettingsError(
            f"no Redis: set FLASHCLAIM_REDIS_URL, or run `flashclaim serve` with data dir "
            f"{settings.data_dir}"
        )
    return url


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        redis_url=args.redis_url, data_dir=args.data_dir, namespace=args.namespace,
        ledger_dsn=getattr(args, "ledger_dsn", None),
    )


def ledger(args: argparse.Namespace) -> int:
    import redis

    from flashclaim.keys import KeySpace
    from flashclaim.ledger import ConsumerOptions, LedgerConsumer
    from flashclaim.ledger_db import open_ledger

    settings = _settings(args)
    options = ConsumerOptions(
        group=args.group, batch=args.batch, block_ms=args.block_ms,
        claim_idle_ms=args.claim_idle_ms, retain_ms=args.retain_ms,
        **({"consumer": args.consumer} if args.consumer else {}),
    )
    r = redis.Redis.from_url(_redis_url(settings), decode_responses=True,
                             socket_timeout=options.block_ms / 1000 + 5)
    consumer = LedgerConsumer(r, open_ledger(settings.ledger_dsn, settings.data_dir),
                              KeySpace(settings.namespace), options)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: consumer.request_stop())
    log.info("ledger consumer %s of group %s started", options.consumer, options.group)
    stats = consumer.run()
    log.info("ledger consumer stopped: %s", stats)
    consumer.ledger.close()
    return 0


def reconcile(args: argparse.Namespace) -> int:
    import redis

    from flashclaim.keys import KeySpace
    from flashclaim.ledger_db import open_ledger
    from flashclaim.reconcile import format_table, reconcile_campaign, wait_for_ledger

    settings = _settings(args)
    keyspace = KeySpace(settings.namespace)
    r = redis.Redis.from_url(_redis_url(settings), decode_responses=True)
    ids = [args.campaign] if args.campaign else [
        str(i) for i in r.zrange(keyspace.registry, 0, -1)]
    if args.wait:
        wait_for_ledger(r, keyspace, ids, args.wait, args.group)
    ledger_db = open_ledger(settings.ledger_dsn, settings.data_dir)
    results = [reconcile_campaign(r, ledger_db, keyspace, c, args.group) for c in ids]
    ledger_db.close()
    print(format_table(results))
    lag = sum(x.lag for x in results)
    if lag:
        print(f"the ledger lags by {lag} entries (pending or not yet delivered)")
    bad = [x for x in results if not x.ok]
    print("MISMATCH" if bad else "all consistent")
    return 1 if bad else 0


def demo(args: argparse.Namespace) -> int:
    from flashclaim.demo import run_demo

    return run_demo(args)


def bench(args: argparse.Namespace) -> int:
    from flashclaim.bench import run_bench

    return run_bench(args)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", help="default: FLASHCLAIM_REDIS_URL, else the embedded server")
    p.add_argument("--data-dir", type=Path, help="default: FLASHCLAIM_DATA_DIR or .flashclaim")
    p.add_argument("--namespace", help="key prefix; default: FLASHCLAIM_NAMESPACE or fc")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashclaim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--admin-port", type=int, default=0,
                   help="serve the admin API on this port only (default: FLASHCLAIM_ADMIN_PORT,"
                        " else with the public API)")
    p.add_argument("--admin-host", default="127.0.0.1", help="the admin listener's address")
    _common(p)
    p.add_argument("--admin-token", help="default: FLASHCLAIM_ADMIN_TOKEN, else generated")
    p.set_defaults(run=serve)

    p = commands.add_parser("ledger", help="carry every claim into the SQL ledger")
    _common(p)
    p.add_argument("--ledger-dsn", help="default: FLASHCLAIM_LEDGER_DSN, else SQLite in data dir")
    p.add_argument("--group", default="ledger", help="consumer group (default ledger)")
    p.add_argument("--consumer", help="consumer name (default host-pid)")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--block-ms", type=int, default=1000)
    p.add_argument("--claim-idle-ms", type=int, default=30_000,
                   help="take over entries pending this long with another consumer")
    p.add_argument("--retain-ms", type=int, default=86_400_000,
                   help="keep acknowledged entries this long before trimming")
    p.set_defaults(run=ledger)

    p = commands.add_parser("reconcile",
                            help="compare Redis, stream and ledger; exit 1 on mismatch")
    _common(p)
    p.add_argument("campaign", nargs="?", help="one campaign id (default: all)")
    p.add_argument("--ledger-dsn", help="default: FLASHCLAIM_LEDGER_DSN, else SQLite in data dir")
    p.add_argument("--group", default="ledger")
    p.add_argument("--wait", type=float, default=0,
                   help="first wait up to this many seconds for the ledger to catch up")
    p.set_defaults(run=reconcile)

    p = commands.add_parser("demo", help="service, ledger and a flash crowd, all embedded")
    p.add_argument("--stock", type=int, default=1000)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=200, help="open connections")
    p.add_argument("--workers", type=int, default=1, help="service worker processes")
    p.add_argument("--data-dir", help="keep everything here (default: a temp dir, removed)")
    p.add_argument("--keep", action="store_true", help="keep the temp data dir")
    p.set_defaults(run=demo)

    p = commands.add_parser("bench", help="claim paths as fractions of the server's ceiling")
    p.add_argument("--seconds", type=int, default=8, help="per scenario")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--workers", type=int, default=2, help="also measure N service workers")
    p.add_argument("--crowd-stock", type=int, default=10_000)
    p.add_argument("--crowd-taps", type=int, default=200_000)
    p.add_argument("--crowd-users", type=int, default=100_000)
    p.add_argument("--python-load", action="store_true",
                   help="use the asyncio generator even when wrk is installed")
    p.set_defaults(run=bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"flashclaim: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
