"""`flashclaim bench-bots`: who gets the stock when a bot farm races people at 00:00.

1,000 people each tap once at a person's pace after 00:00; 10 bot clients, each with 100
accounts on one device, tap as fast as they can from 00:00 (they know the countdown
too); stock 500. The same crowd meets each defence in turn, on a real service and Redis:
none, per_device_limit 1, proof of work, a draw. Reported: the share of the stock the
bots won. The bots run in a process of their own (a farm has its own machines), the
people in this one.

A person's pace: the tap lands after a reaction time drawn log-normally (median 0.6 s,
most between 0.3 and 1.6 s). With proof of work, a person's phone adds its solving
time: the expected hashes over PHONE_HASHES_PER_S (docs/fairness.md measures a desktop
Chromium and divides by four for a phone). The bench solves each person's challenge for
real too (the service checks every nonce) at BENCH_DIFFICULTY bits, low enough that the
people's 1,000 solutions fit on this machine; the bots solve theirs at full speed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from flashclaim.fair.challenge import solve
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.tables import text_table
from flashclaim.timefmt import to_rfc3339
from flashclaim.tools.bench import TOKEN, Service
from flashclaim.tools.loadgen import Connection, Request

PEOPLE, BOTS, ACCOUNTS, STOCK = 1000, 10, 100, 500
BENCH_DIFFICULTY = 12
PHONE_HASHES_PER_S = 40_000  # docs/fairness.md: a desktop chromium's Web Crypto rate / 4
LEAD_S = 2.0  # from the campaign's creation to its 00:00
ENTRY_WINDOW_S = 4.0  # a draw's entries stay open this long after 00:00
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Defence:
    name: str
    fields: dict[str, Any]
    draw: bool = False


DEFENCES = (
    Defence("no defence", {}),
    Defence("per_device_limit: 1", {"per_device_limit": 1}),
    Defence(f"proof of work ({BENCH_DIFFICULTY} bits)",
            {"challenge": {"difficulty": BENCH_DIFFICULTY}}),
    Defence("draw", {}, draw=True),
    Defence("draw + per_device_limit: 1", {"per_device_limit": 1}, draw=True),
)


@dataclass
class Outcome:
    defence: str
    bot_grants: int
    people_grants: int
    bot_requests: int
    entrants: tuple[int, int] | None = None  # a draw: (bot entries, people entries)


def _headers(user: str, device: str) -> tuple[tuple[str, str], ...]:
    return (("X-User-Id", user), ("X-Device-Id", device), ("Content-Type", "application/json"))


async def _tap(conn: Connection, path: str, user: str, device: str, bits: int | None,
               campaign_id: str) -> tuple[int, bytes]:
    """One claim or entry, with a solved challenge when the campaign asks for one."""
    body = b""
    if bits is not None:
        status, raw = await conn.attempt(Request(
            "GET", f"/v1/campaigns/{campaign_id}/challenge", _headers(user, device)))
        if status != 200:
            return status, raw
        token = orjson.loads(raw)["token"]
        body = orjson.dumps({"challenge": token, "nonce": solve(token, bits)})
    return await conn.attempt(Request("POST", path, _headers(user, device), body))


def _bot_farm(port: int, campaign_id: str, path: str, start_at: float, bits: int | None,
              until: float) -> int:
    """The farm (its own process): each bot walks its accounts from 00:00 as fast as it
    can until the stock is gone, the device is capped or the time is up; its requests."""
    async def bot(b: int) -> int:
        conn = Connection("127.0.0.1", port)
        pending = [f"bot{b}-{k}" for k in range(ACCOUNTS)]
        sent = 0
        await asyncio.sleep(max(0.0, start_at - time.time()))
        while pending and time.time() < until:
            account = pending.pop(0)
            status, raw = await _tap(conn, path, account, f"rig{b}", bits, campaign_id)
            sent += 1
            error = orjson.loads(raw).get("error") if status >= 400 and raw else None
            if status == 0 or error in ("rate_limited", "not_started"):
                pending.append(account)  # try this account again
            elif error in ("sold_out", "device_limit", "entries_closed"):
                break
        await conn.close()
        return sent

    async def farm() -> int:
        return sum(await asyncio.gather(*(bot(b) for b in range(BOTS))))
    return asyncio.run(farm())


async def _people(port: int, campaign_id: str, path: str, start_at: float, bits: int | None,
                  rng: random.Random) -> None:
    async def person(i: int, delay: float) -> None:
        await asyncio.sleep(max(0.0, start_at + delay - time.time()))
        conn = Connection("127.0.0.1", port)
        if bits is not None:  # the phone's solving time, then the (real) solution
            await asyncio.sleep(2 ** bits / PHONE_HASHES_PER_S)
        await _tap(conn, path, f"person{i}", f"phone{i}", bits, campaign_id)
        await conn.close()
    delays = [rng.lognormvariate(math.log(0.6), 0.5) for _ in range(PEOPLE)]
    await asyncio.gather(*(person(i, d) for i, d in enumerate(delays)))


def _scenario(service: Service, defence: Defence, pool: ProcessPoolExecutor,
              rng: random.Random) -> Outcome:
    base = service.base
    now_ms = int(time.time() * 1000)  # (one machine: the service's clock is this one)
    start_ms = now_ms + int(LEAD_S * 1000)
    cid = f"bots-{rng.randrange(10**9)}"
    body: dict[str, Any] = {"id": cid, "name": defence.name, "stock": STOCK,
                            "starts_at": to_rfc3339(start_ms),
                            "coupons": [{"type": "cash", "value": 500}], **defence.fields}
    if defence.draw:
        closes = to_rfc3339(start_ms + int(ENTRY_WINDOW_S * 1000))
        body["admission"] = {"mode": "draw", "entries_until": closes, "draw_at": closes}
    httpx.post(base + "/v1/admin/campaigns", json=body, headers=ADMIN).raise_for_status()
    path = f"/v1/campaigns/{cid}/{'entries' if defence.draw else 'claims'}"
    bits = defence.fields.get("challenge", {}).get("difficulty")
    start_at = start_ms / 1000
    until = start_at + ENTRY_WINDOW_S + 4
    bots = pool.submit(_bot_farm, service.port, cid, path, start_at, bits, until)
    asyncio.run(_people(service.port, cid, path, start_at, bits, rng))
    bot_requests = bots.result()
    entrants = None
    if defence.draw:
        _wait_for_draw(base, cid)
        entrants = _entrants(base, cid)
    users = _granted_users(base, cid)
    bot_grants = sum(u.startswith("bot") for u in users)
    return Outcome(defence.name, bot_grants, len(users) - bot_grants, bot_requests, entrants)


def _wait_for_draw(base: str, cid: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/v1/campaigns/{cid}").json()["draw"]["state"] == "done":
            return
        time.sleep(0.2)
    raise RuntimeError("the draw was not done within a minute")


def _entrants(base: str, cid: str) -> tuple[int, int]:
    bots = people = 0
    cursor = ""
    while True:
        page = httpx.get(f"{base}/v1/admin/campaigns/{cid}/entries", headers=ADMIN,
                         params={"cursor": cursor, "limit": 10_000}).json()
        for e in page["entries"]:
            bots += e["user_id"].startswith("bot")
            people += e["user_id"].startswith("person")
        if page["next"] is None:
            return bots, people
        cursor = page["next"]


def _granted_users(base: str, cid: str) -> list[str]:
    users: list[str] = []
    after = ""
    while True:
        page = httpx.get(f"{base}/v1/admin/campaigns/{cid}/claims", headers=ADMIN,
                         params={"after": after, "limit": 1000} if after else {"limit": 1000}
                         ).json()
        users += [c["user_id"] for c in page["claims"]]
        if page["next"] is None:
            return users
        after = page["next"]


def draw_bound(outcome: Outcome) -> str:
    """A draw's expected bot share and its 3-sigma bound (hypergeometric)."""
    assert outcome.entrants is not None
    bots, people = outcome.entrants
    total = bots + people
    n = min(STOCK, total)
    mean = n * bots / total
    sd = math.sqrt(n * (bots / total) * (people / total) * (total - n) / max(total - 1, 1))
    inside = abs(outcome.bot_grants - mean) <= 3 * sd
    return (f"entrants {bots} bots / {people} people: expected {mean / STOCK:.1%} "
            f"± {3 * sd / STOCK:.1%} (3 sd); {'within' if inside else 'OUTSIDE'} the bound")


def run_bench_bots(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="flashclaim-bots-"))
    server = EmbeddedServer(data_dir)
    url = server.start()
    print(f"flashclaim bench-bots: {PEOPLE} people tap once at a person's pace, {BOTS} bots "
          f"x {ACCOUNTS} accounts (one device each) tap as fast as they can; stock {STOCK}",
          flush=True)
    outcomes: list[Outcome] = []
    try:
        service = Service(url, 1, data_dir / "serve.log")
        try:
            with ProcessPoolExecutor(1) as pool:
                for defence in DEFENCES:
                    outcome = _scenario(service, defence, pool, rng)
                    outcomes.append(outcome)
                    print(f"  {defence.name}: bots won {outcome.bot_grants / STOCK:.1%}",
                          flush=True)
        finally:
            service.stop()
    finally:
        server.stop()
    rows = []
    for o in outcomes:
        note = draw_bound(o) if o.entrants is not None else ""
        rows.append([o.defence, f"{o.bot_grants / STOCK:.1%}", str(o.bot_grants),
                     str(o.people_grants), f"{o.bot_requests:,}", note])
    print("\n".join(text_table(["defence", "bots' share", "bot grants", "people granted",
                                "bot requests", "note"], rows)))
    failed = [o for o in outcomes if o.bot_grants + o.people_grants > STOCK]
    if failed:
        print("OVERSOLD:", ", ".join(o.defence for o in failed))
        return 1
    return 0
