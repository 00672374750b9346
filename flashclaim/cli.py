"""The `flashclaim` command line."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
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
        if embedded is not None:
            embedded.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flashclaim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("serve", help="run the HTTP service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--redis-url", help="default: FLASHCLAIM_REDIS_URL, else an embedded server")
    p.add_argument("--data-dir", type=Path, help="default: FLASHCLAIM_DATA_DIR or .flashclaim")
    p.add_argument("--namespace", help="key prefix; default: FLASHCLAIM_NAMESPACE or fc")
    p.add_argument("--admin-token", help="default: FLASHCLAIM_ADMIN_TOKEN, else generated")
    p.set_defaults(run=serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except SettingsError as exc:
        print(f"flashclaim: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
