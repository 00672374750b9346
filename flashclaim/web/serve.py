"""`flashclaim serve`: everything a running service needs around its listener."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.runtime.lifeline import PARENT_ENV, die_with_parent
from flashclaim.runtime.owner_lock import OwnerLock
from flashclaim.runtime.private_files import private_dir, write_private
from flashclaim.settings import Settings
from flashclaim.web import listener

log = logging.getLogger("flashclaim")


def _admin_token(settings: Settings) -> tuple[str, bool]:
    """The configured token, else one generated once and kept in the data directory;
    and whether it was generated just now."""
    return _kept_secret(settings.admin_token, settings.data_dir / "admin-token", 24)


def _kept_secret(configured: str | None, path: Path, size: int) -> tuple[str, bool]:
    if configured:
        return configured, False
    if path.exists():
        return path.read_text().strip(), False
    secret = secrets.token_urlsafe(size)
    while secret.startswith("-"):  # a token passed as a flag's value must not look like a flag
        secret = secrets.token_urlsafe(size)
    private_dir(path.parent)
    write_private(path, secret + "\n", exclusive=True)
    return secret, True


def serve(settings: Settings, host: str, port: int, workers: int, admin_host: str) -> int:
    """`flashclaim serve`: the secrets kept in the data directory, the embedded server when
    no Redis URL is set (one serve per data directory), the admin listener when it has a
    port of its own, then the public listener with its workers until SIGTERM."""
    lock = None
    if settings.redis_url is None:  # the embedded server: one serve per data directory
        lock = OwnerLock(settings.data_dir)
        lock.acquire()
    embedded = None
    admin = None
    try:
        # Workers are separate processes: they read their settings from the environment.
        token, generated = _admin_token(settings)
        os.environ["FLASHCLAIM_ADMIN_TOKEN"] = token
        # Redemption codes are keyed hashes: the key must outlive restarts (it is kept).
        code_secret, _ = _kept_secret(settings.code_secret, settings.data_dir / "code-secret", 32)
        os.environ["FLASHCLAIM_CODE_SECRET"] = code_secret
        # Challenges and the stream's address hashes must verify across restarts (kept).
        fairness, _ = _kept_secret(settings.fairness_secret,
                                   settings.data_dir / "fairness-secret", 32)
        os.environ["FLASHCLAIM_FAIRNESS_SECRET"] = fairness
        checkout, _ = _kept_secret(settings.checkout_token, settings.data_dir / "checkout-token",
                                   24)
        os.environ["FLASHCLAIM_CHECKOUT_TOKEN"] = checkout
        events, _ = _kept_secret(settings.events_token, settings.data_dir / "events-token", 24)
        os.environ["FLASHCLAIM_EVENTS_TOKEN"] = events
        if generated:
            log.info("admin token generated and kept in %s", settings.data_dir / "admin-token")
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedServer(settings.data_dir)
            redis_url = embedded.start()
            embedded.supervise()
            log.info("embedded server on 127.0.0.1:%d, data in %s (AOF, fsync always)",
                     embedded.port, settings.data_dir / "redis")
        os.environ["FLASHCLAIM_REDIS_URL"] = redis_url
        os.environ["FLASHCLAIM_DATA_DIR"] = str(settings.data_dir)
        os.environ["FLASHCLAIM_NAMESPACE"] = settings.namespace
        if settings.ledger_dsn:
            os.environ["FLASHCLAIM_LEDGER_DSN"] = settings.ledger_dsn
        os.environ[PARENT_ENV] = str(os.getpid())  # workers die with this process
        if workers > 1:  # every worker's /metrics reports the sum over all workers
            metrics_dir = settings.data_dir / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            private_dir(metrics_dir)
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
        if settings.admin_port:
            # The admin API on its own listener (bind it to a private interface); the public
            # one serves no admin route at all.
            admin = subprocess.Popen(
                [sys.executable, "-m", "flashclaim.web.listener", admin_host,
                 str(settings.admin_port)],
                env={**os.environ, "FLASHCLAIM_ROLE": "admin"}, preexec_fn=die_with_parent)
            os.environ["FLASHCLAIM_ROLE"] = "public"
            log.info("admin API on %s:%d; not on the public port", admin_host,
                     settings.admin_port)
        # uvicorn re-raises the SIGTERM it caught once it has shut down; turn that into
        # SystemExit so the `finally` below still stops the embedded server.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        listener.run(host, port, workers, Settings.from_env())
    finally:
        if admin is not None:
            admin.terminate()
            admin.wait(30)
        if embedded is not None:
            embedded.stop()
        if lock is not None:
            lock.release()
    return 0
