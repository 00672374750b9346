"""`flashclaim token create NAME --role R | list | revoke NAME`: the named operator tokens,
as the admin API manages them, from a shell (the token is printed once, at its creation)."""

from __future__ import annotations

import argparse
import asyncio

from redis.asyncio import Redis

from flashclaim.audit_log import cli_entry
from flashclaim.errors import ApiError
from flashclaim.keys import KeySpace
from flashclaim.roles import BOOTSTRAP, TOKEN_NAME_RE
from flashclaim.store.connection import tool_client
from flashclaim.store.token_store import TokenStore
from flashclaim.tables import text_table
from flashclaim.timefmt import to_rfc3339


async def _run(args: argparse.Namespace, url: str, namespace: str) -> int:
    if args.action != "list" and not (args.name and TOKEN_NAME_RE.fullmatch(args.name)
                                      and args.name != BOOTSTRAP):
        print(f"flashclaim token: {args.action} needs a NAME of 1-64 A-Za-z0-9_.- "
              f"(not {BOOTSTRAP!r})")
        return 2
    redis = tool_client(url, timeout_s=10)
    store = TokenStore(redis, KeySpace(namespace))
    try:
        if args.action == "create":
            info, token = await store.create(args.name, args.role)
            await _audit(redis, namespace, "create", {"name": info.name, "role": info.role})
            print(f"token {info.name} ({info.role}), shown this once:\n{token}")
        elif args.action == "revoke":
            await store.revoke(args.name)
            await _audit(redis, namespace, "revoke", {"name": args.name})
            print(f"token {args.name} revoked (every service refuses it within a second)")
        else:
            rows = [[t.name, t.role, to_rfc3339(t.created_at)] for t in await store.all()]
            print("\n".join(text_table(["name", "role", "created"], rows)) if rows
                  else "no named tokens (the bootstrap admin token is not listed)")
        return 0
    except ApiError as exc:
        print(f"flashclaim token: {exc.message}")
        return 2
    finally:
        await redis.aclose()


async def _audit(redis: Redis, namespace: str, action: str, body: dict[str, str]) -> None:
    entry = cli_entry(f"flashclaim token {action}", body, 200)
    await redis.xadd(KeySpace(namespace).audit, entry.fields())  # type: ignore[arg-type]


def run_token(args: argparse.Namespace, url: str, namespace: str) -> int:
    return asyncio.run(_run(args, url, namespace))
