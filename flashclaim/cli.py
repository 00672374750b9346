"""The `flashclaim` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import NoReturn

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flashclaim import __version__
from flashclaim.ledger.db import LedgerMissing, LedgerUnavailable
from flashclaim.roles import ROLES
from flashclaim.runtime.embedded import EmbeddedError
from flashclaim.runtime.owner_lock import DataDirBusy
from flashclaim.settings import Settings, SettingsError
from flashclaim.stream import LEDGER_GROUP

log = logging.getLogger("flashclaim")


def serve_settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, with serve's flags over them."""
    return Settings.from_env(
        redis_url=args.redis_url, data_dir=args.data_dir, namespace=args.namespace,
        admin_token=args.admin_token, admin_port=args.admin_port or None,
        ledger_dsn=args.ledger_dsn,
    )


def serve(args: argparse.Namespace) -> int:
    from flashclaim.web.serve import serve as run_serve

    return run_serve(serve_settings(args), args.host, args.port, args.workers, args.admin_host)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        redis_url=args.redis_url, data_dir=args.data_dir, namespace=args.namespace,
        ledger_dsn=getattr(args, "ledger_dsn", None),
    )


def ledger(args: argparse.Namespace) -> int:
    from flashclaim.ledger.consumer import ConsumerOptions, run_ledger

    options = ConsumerOptions(
        group=args.group, batch=args.batch, block_ms=args.block_ms,
        claim_idle_ms=args.claim_idle_ms, retain_ms=args.retain_ms,
        campaign_retention_ms=int(args.keep_ended_days * 86_400_000),
        progress_ms=int(args.progress_s * 1000),
        **({"consumer": args.consumer} if args.consumer else {}),
    )
    return run_ledger(_settings(args), options)


def reconcile(args: argparse.Namespace) -> int:
    from flashclaim.ledger.reconcile import run_reconcile

    return run_reconcile(_settings(args), args.campaign, args.wait, args.repair, args.group)


def expiring(args: argparse.Namespace) -> int:
    from flashclaim.ledger.expiring import run_expiring

    return run_expiring(_settings(args), args.within, args.campaign, args.format)


def report(args: argparse.Namespace) -> int:
    from flashclaim.ledger.report import run_report

    return run_report(_settings(args), args.campaign, args.bucket, args.format)


def _within(value: str) -> int:
    from flashclaim.ledger.expiring import parse_within

    try:
        return parse_within(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def grant(args: argparse.Namespace) -> int:
    from flashclaim.store.connection import redis_url_of
    from flashclaim.tools.grant_file import run_grant

    settings = _settings(args)
    return run_grant(args, redis_url_of(settings), settings.namespace)


def token(args: argparse.Namespace) -> int:
    from flashclaim.store.connection import redis_url_of
    from flashclaim.tools.token_admin import run_token

    settings = _settings(args)
    return run_token(args, redis_url_of(settings), settings.namespace)


def demo(args: argparse.Namespace) -> int:
    from flashclaim.tools.demo import run_demo

    return run_demo(args)


def webhooks(args: argparse.Namespace) -> int:
    from flashclaim.webhooks.dispatcher import Policy
    from flashclaim.webhooks.run import run_webhooks

    return run_webhooks(_settings(args), Policy(first_retry_s=args.first_retry_s,
                                                give_up_after_s=args.give_up_after_s,
                                                timeout_s=args.timeout_s,
                                                lease_ms=args.lease_ms))


def bench(args: argparse.Namespace) -> int:
    from flashclaim.tools.bench import run_bench

    return run_bench(args)


def bench_bots(args: argparse.Namespace) -> int:
    from flashclaim.tools.bench_bots import run_bench_bots

    return run_bench_bots(args)


def bench_draw(args: argparse.Namespace) -> int:
    from flashclaim.tools.bench_draw import run_bench_draw

    return run_bench_draw(args)


def bench_quote(args: argparse.Namespace) -> int:
    from flashclaim.tools.bench_quote import run_bench_quote

    return run_bench_quote(args)


def bench_wallet(args: argparse.Namespace) -> int:
    from flashclaim.tools.bench_wallet import run_bench_wallet

    return run_bench_wallet(args)


def _positive(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _port(value: str) -> int:
    number = _positive(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number (1-65535)")
    return number


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", help="FLASHCLAIM_REDIS_URL; unset: the embedded server")
    p.add_argument("--data-dir", type=Path, help="FLASHCLAIM_DATA_DIR; unset: .flashclaim")
    p.add_argument("--namespace", help="key prefix; FLASHCLAIM_NAMESPACE; unset: fc")


def _ledger_dsn(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger-dsn", help="FLASHCLAIM_LEDGER_DSN; unset: SQLite in the data dir")


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line naming it, and exit 2 (not the whole usage text)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default; a flag without one says in its help what happens when unset."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flashclaim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"flashclaim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text,
                                   formatter_class=_DefaultsHelp)

    p = command("serve", "run the HTTP service")
    p.add_argument("--host", default="127.0.0.1", help="the public listener's address")
    p.add_argument("--port", type=_port, default=8000, help="the public listener's port")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes")
    p.add_argument("--admin-port", type=_port, default=None,
                   help="serve the admin API on this port only (FLASHCLAIM_ADMIN_PORT; unset:"
                        " with the public API)")
    p.add_argument("--admin-host", default="127.0.0.1", help="the admin listener's address")
    _common(p)
    p.add_argument("--admin-token", help="FLASHCLAIM_ADMIN_TOKEN; unset: generated, kept in "
                                         "<data dir>/admin-token")
    _ledger_dsn(p)
    p.set_defaults(run=serve)

    p = command("webhooks", "deliver the outbox's events to the webhook endpoints")
    _common(p)
    p.add_argument("--first-retry-s", type=float, default=1.0,
                   help="the first retry's wait; each next one doubles (at most an hour)")
    p.add_argument("--give-up-after-s", type=float, default=86_400.0,
                   help="dead-letter an event this long after its first attempt")
    p.add_argument("--timeout-s", type=float, default=10.0, help="one delivery's timeout")
    p.add_argument("--lease-ms", type=_positive, default=15_000,
                   help="how soon another dispatcher takes over a dead one's endpoints")
    p.set_defaults(run=webhooks)

    p = command("ledger", "carry every claim into the SQL ledger")
    _common(p)
    _ledger_dsn(p)
    p.add_argument("--group", default=LEDGER_GROUP, help="consumer group")
    p.add_argument("--consumer", help="consumer name (unset: <host>-<pid>)")
    p.add_argument("--batch", type=_positive, default=500, help="entries per read and commit")
    p.add_argument("--block-ms", type=_positive, default=1000,
                   help="how long one read waits for new entries")
    p.add_argument("--claim-idle-ms", type=_positive, default=30_000,
                   help="take over entries pending this long with another consumer")
    p.add_argument("--retain-ms", type=_positive, default=86_400_000,
                   help="keep acknowledged entries this long before trimming")
    p.add_argument("--keep-ended-days", type=float, default=30.0,
                   help="remove an ended campaign's Redis keys this long after its end, once "
                        "the ledger has all its records")
    p.add_argument("--progress-s", type=float, default=30.0,
                   help="log rows written and lag this often")
    p.set_defaults(run=ledger)

    p = command("reconcile", "compare Redis, stream and ledger; exit 1 on mismatch")
    _common(p)
    p.add_argument("campaign", nargs="?", help="one campaign id (unset: all)")
    _ledger_dsn(p)
    p.add_argument("--group", default=LEDGER_GROUP, help="the ledger's consumer group")
    p.add_argument("--wait", type=float, default=0,
                   help="first wait up to this many seconds for the ledger to catch up")
    p.add_argument("--repair", action="store_true",
                   help="write every retained stream record the ledger lacks (idempotent), "
                        "then reconcile")
    p.set_defaults(run=reconcile)

    p = command("expiring", "list unused coupons that expire soon, and who holds them")
    _common(p)
    _ledger_dsn(p)
    p.add_argument("--within", type=_within, default="3d",
                   help="how soon: a number and s, m, h or d (at most a year)")
    p.add_argument("--campaign", help="only this campaign's coupons (unset: all)")
    p.add_argument("--format", choices=("table", "csv"), default="table",
                   help="csv streams any number of rows; table is for a terminal")
    p.set_defaults(run=expiring)

    p = command("report", "a campaign's claims, use rate and discount cost, from the ledger")
    _common(p)
    p.add_argument("campaign", help="the campaign id")
    _ledger_dsn(p)
    p.add_argument("--bucket", choices=("minute", "hour", "day"), default="minute",
                   help="the timeline's step")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="json: the body of GET /v1/admin/campaigns/{id}/report")
    p.set_defaults(run=report)

    p = command("grant", "grant a campaign's coupons to the users listed in a file")
    _common(p)
    p.add_argument("campaign", help="the campaign id")
    p.add_argument("--users-file", required=True,
                   help="one user a line: `user_id [tag,tag...]`; # comments")
    p.add_argument("--grant-id", help="re-use one to finish an interrupted grant (unset: new)")
    p.set_defaults(run=grant)

    p = command("token", "named operator tokens: create (printed once), list, revoke")
    _common(p)
    p.add_argument("action", choices=("create", "list", "revoke"),
                   help="create (the token printed once), list, or revoke")
    p.add_argument("name", nargs="?", help="the token's name (create, revoke)")
    p.add_argument("--role", choices=ROLES, default="viewer", help="with create")
    p.set_defaults(run=token)

    p = command("demo", "service, ledger and a flash crowd, all embedded")
    p.add_argument("--stock", type=_positive, default=1000, help="coupons in the campaign")
    p.add_argument("--requests", type=_positive, default=20_000,
                   help="taps in all (at least --users: every user taps once)")
    p.add_argument("--users", type=_positive, default=10_000, help="distinct users")
    p.add_argument("--concurrency", type=_positive, default=200, help="open connections")
    p.add_argument("--workers", type=_positive, default=1, help="service worker processes")
    p.add_argument("--data-dir", help="keep everything here, and reuse it on a re-run "
                                      "(unset: a temp dir, removed)")
    p.add_argument("--keep", action="store_true",
                   help="after the verdict, keep the service and the ledger running until "
                        "Ctrl-C or SIGTERM, and print the pages' URLs (a temp data dir is "
                        "removed then; --data-dir keeps it)")
    p.set_defaults(run=demo)

    p = command("bench", "claim paths as fractions of the server's ceiling")
    p.add_argument("--seconds", type=_positive, default=8, help="per scenario")
    p.add_argument("--connections", type=_positive, default=64, help="open connections")
    p.add_argument("--threads", type=_positive, default=2, help="wrk threads")
    p.add_argument("--workers", type=_positive, default=2, help="also measure N service workers")
    p.add_argument("--crowd-stock", type=_positive, default=10_000,
                   help="stock of the mixed crowd")
    p.add_argument("--crowd-taps", type=_positive, default=200_000,
                   help="taps of the mixed crowd")
    p.add_argument("--crowd-users", type=_positive, default=100_000,
                   help="users of the mixed crowd")
    p.add_argument("--grant-users", type=_positive, default=100_000,
                   help="users of the operator-grant scenario")
    p.add_argument("--python-load", action="store_true",
                   help="use the asyncio generator even when wrk is installed")
    p.set_defaults(run=bench)

    p = command("bench-bots", "who wins the stock when a bot farm races people, per defence")
    p.add_argument("--seed", type=int, default=2026, help="of the people's reaction times")
    p.set_defaults(run=bench_bots)

    p = command("bench-draw", "a drawn campaign: a million entries, drawn for a thousand coupons")
    p.add_argument("--entries", type=_positive, default=1_000_000, help="entrants")
    p.add_argument("--stock", type=_positive, default=1000, help="winners")
    p.set_defaults(run=bench_draw)

    p = command("bench-wallet", "GET /v1/me/coupons against a large PostgreSQL ledger")
    p.add_argument("--ledger-dsn", required=True,
                   help="postgresql:// DSN of an empty database (filled, then measured)")
    p.add_argument("--coupons", type=_positive, default=1_000_000, help="coupons to fill in")
    p.add_argument("--users", type=_positive, default=50_000, help="users holding them")
    p.add_argument("--seconds", type=_positive, default=8, help="per scenario")
    p.add_argument("--connections", type=_positive, default=32,
                   help="open connections of the closed-loop scenarios")
    p.add_argument("--rate", type=float, default=200.0,
                   help="wallet requests per second of the open-loop scenario")
    p.set_defaults(run=bench_wallet)

    p = command("bench-quote", "POST /v1/me/quote: a user with many coupons, a large cart")
    p.add_argument("--coupons", type=_positive, default=50, help="coupons the user holds")
    p.add_argument("--items", type=_positive, default=30, help="lines of the cart")
    p.add_argument("--seconds", type=_positive, default=8, help="per scenario")
    p.add_argument("--connections", type=_positive, default=32,
                   help="open connections of the closed-loop scenarios")
    p.add_argument("--rate", type=float, default=200.0,
                   help="quotes per second of the open-loop scenario")
    p.add_argument("--ledger-dsn", default=None,
                   help="postgresql:// DSN of the ledger (default: SQLite in a temp dir)")
    p.set_defaults(run=bench_quote)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except (SettingsError, DataDirBusy, LedgerMissing, LedgerUnavailable) as exc:
        print(f"flashclaim {args.command}: {exc}", file=sys.stderr)
        return 2
    except (RedisConnectionError, RedisTimeoutError) as exc:
        print(f"flashclaim {args.command}: Redis is unreachable ({exc})", file=sys.stderr)
        return 2
    except EmbeddedError as exc:
        print(f"flashclaim {args.command}: the embedded server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: whatever ran has cleaned up in its `finally`
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
