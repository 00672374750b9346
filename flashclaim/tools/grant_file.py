"""`flashclaim grant CAMPAIGN --users-file FILE`: an operator grant from a file, with progress.

The file has one user per line: the user id, then optionally whitespace and the
user's comma-separated segment tags. Blank lines and lines starting with # are
skipped. Every line is checked before anything is sent: a bad line is named and
nothing is granted. The users go in calls of 10,000 under one grant id (a grant is
idempotent per user, so re-running the command with the same --grant-id finishes
an interrupted grant and grants nobody twice), then this process runs the grant
itself (or watches a service's runner do it) and draws its progress.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import TextIO

from flashclaim.audit_log import cli_entry
from flashclaim.claim.grant_runner import GrantRunner
from flashclaim.claim.service import ClaimService
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.schemas.issuance import MAX_USERS_PER_CALL, Grant
from flashclaim.settings import SettingsError
from flashclaim.store.connection import tool_client
from flashclaim.store.grant_store import GrantRequest, GrantStore, GrantUser
from flashclaim.store.scripts import Scripts
from flashclaim.validation import CAMPAIGN_ID_RE, TAG_RE, USER_ID_RE

BAR_WIDTH = 40


def read_users(path: Path) -> list[GrantUser]:
    """The file's users; SettingsError (one line, exit 2) for a file that cannot be read
    or a line that is not `user_id [tag,tag...]` (spaces or tabs between the two)."""
    try:
        return _users_of(path)
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SettingsError(f"{path}: {exc.strerror or exc}") from None


def _users_of(path: Path) -> list[GrantUser]:
    users = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            user_id, *rest = text.split(None, 1)
            tags = tuple(t for t in (rest[0] if rest else "").strip().split(",") if t)
            if not USER_ID_RE.fullmatch(user_id) or not all(TAG_RE.fullmatch(t) for t in tags):
                raise SettingsError(f"{path}:{number}: not `user_id [tag,tag...]`: {text[:80]!r}")
            users.append(GrantUser(user_id, tags))
    if not users:
        raise SettingsError(f"{path}: no users")
    return users


class ProgressBar:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // max(total, 1)
        rate = done / max(time.monotonic() - self._started, 1e-9)
        self._out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done:,}/{total:,}"
                        f"  {rate:,.0f} users/s")
        self._out.flush()


async def grant_from_file(redis_url: str, namespace: str, campaign_id: str, grant_id: str,
                          users: list[GrantUser], out: TextIO) -> Grant:
    redis = tool_client(redis_url, timeout_s=30)
    try:
        keyspace = KeySpace(namespace)
        scripts = Scripts(redis)
        store = GrantStore(redis, scripts, keyspace)
        for start in range(0, len(users), MAX_USERS_PER_CALL):
            await store.submit(campaign_id, GrantRequest(
                grant_id, users[start:start + MAX_USERS_PER_CALL], None))
        await redis.xadd(keyspace.audit, cli_entry(  # type: ignore[arg-type]
            "flashclaim grant", {"grant_id": grant_id, "users": len(users)}, 202,
            campaign_id).fields())
        runner = GrantRunner(store, ClaimService.over(redis, scripts, keyspace))
        bar = ProgressBar(out)
        while True:
            await runner.run(campaign_id, grant_id, progress=bar)
            progress = await store.progress(campaign_id, grant_id)
            if progress is None or progress[0] >= progress[1]:
                break
            if progress is not None:
                bar(*progress)  # a service's runner holds it: watch
            await asyncio.sleep(0.2)
        out.write("\n")
        return await store.status(campaign_id, grant_id)
    finally:
        await redis.aclose()


def run_grant(args: argparse.Namespace, redis_url: str, namespace: str) -> int:
    if not CAMPAIGN_ID_RE.fullmatch(args.campaign):
        raise SettingsError(f"{args.campaign!r} is not a campaign id")
    grant_id = args.grant_id or "cli-" + secrets.token_hex(6)
    if not CAMPAIGN_ID_RE.fullmatch(grant_id):
        raise SettingsError(f"{grant_id!r} is not a grant id (1-64 of A-Za-z0-9_-)")
    users = read_users(Path(args.users_file))
    print(f"grant {grant_id}: {len(users):,} users to campaign {args.campaign}", file=sys.stderr)
    started = time.monotonic()
    try:
        status = asyncio.run(grant_from_file(redis_url, namespace, args.campaign, grant_id,
                                             users, sys.stderr))
    except ApiError as exc:
        print(f"flashclaim grant: {exc.message}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    print(f"grant {grant_id}: {status.processed:,} of {status.total:,} processed in "
          f"{seconds:.1f}s; " + ", ".join(f"{k} {v:,}" for k, v in status.outcomes.items()))
    return 0
