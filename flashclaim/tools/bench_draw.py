"""`flashclaim bench-draw`: a million entries drawn for a thousand coupons.

On the embedded server (AOF, fsync always, as `serve` runs it): a drawn campaign takes
ENTRIES entries through claim.lua (the entry path of a real POST, batched 1,000 a call as
the service's coalescer batches taps), then its entry window is closed and the drawer
(flashclaim/claim/drawer.py, as every service runs it) draws it. Printed: the entries'
rate, and the draw's time in its steps: freezing the entries, reading them, ranking them
(a thread), granting the winners through claim.lua.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

from flashclaim.claim.decision import ClaimCode, ClaimDecision, ClaimRequest
from flashclaim.claim.drawer import Drawer
from flashclaim.claim.service import ClaimService
from flashclaim.fair.draw import winners
from flashclaim.keys import KeySpace
from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.schemas.campaigns import campaign_spec
from flashclaim.store.campaign_store import CampaignStore
from flashclaim.store.connection import server_time_ms, text, tool_client
from flashclaim.store.scripts import DrawCode, Scripts
from flashclaim.timefmt import to_rfc3339

ENTRY_BATCH = 1000
KS = KeySpace("benchdraw")


async def _bench(url: str, entries: int, stock: int) -> None:
    r = tool_client(url, timeout_s=60)
    scripts = Scripts(r)
    now = await server_time_ms(r)
    hour = 3_600_000
    spec = campaign_spec({
        "id": "draw-" + secrets.token_hex(4), "name": "a million entries", "stock": stock,
        "coupons": [{"type": "cash", "value": 500}],
        "admission": {"mode": "draw", "entries_until": to_rfc3339(now + hour),
                      "draw_at": to_rfc3339(now + hour)}}, now)
    await CampaignStore(r, scripts, KS).create(spec, now)
    keys = KS.campaign(spec.id)
    started = time.perf_counter()
    for first in range(0, entries, ENTRY_BATCH):
        batch = [ClaimRequest(f"e{i}", f"e:u{i}", f"u{i}", (), None, None, entry=True)
                 for i in range(first, min(first + ENTRY_BATCH, entries))]
        decided = [ClaimDecision.of(d) for d in await scripts.claim(keys, batch)]
        if not all(d.code is ClaimCode.ENTERED for d in decided):
            raise RuntimeError("an entry was refused")
    filled = time.perf_counter() - started
    print(f"  {entries:,} entries through claim.lua in {filled:.1f} s "
          f"({entries / filled:,.0f} entries/s)", flush=True)
    # the entry window ends now (the bench does not wait an hour for it)
    await r.hset(keys.meta, mapping={"entries_until": 0, "draw_at": 0})
    claims = ClaimService.over(r, scripts, KS)
    drawer = Drawer(r, scripts, KS, claims)
    started = time.perf_counter()
    state = await drawer.draw(spec.id)
    took = time.perf_counter() - started
    if state is not DrawCode.DONE:
        raise RuntimeError(f"the draw ended {state}")
    steps = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in drawer.last_steps.items())
    print(f"  drawn {stock:,} winners among {entries:,} entrants in {took:.2f} s ({steps})")
    seed = bytes.fromhex(str(await r.hget(keys.meta, "draw_seed")))
    records = await r.xrange(keys.stream) or []
    granted = {text((fields or {})["user_id"]) for _, fields in records}
    expected = set(winners(seed, [f"u{i}" for i in range(entries)], stock))
    if granted != expected:
        raise RuntimeError("the granted users differ from the recomputed winners")
    print(f"  check: the {len(granted):,} grants are exactly the recomputed winners")
    await r.aclose()


def run_bench_draw(args: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="flashclaim-draw-"))
    server = EmbeddedServer(data_dir)
    url = server.start()
    print(f"flashclaim bench-draw: {args.entries:,} entries, stock {args.stock:,}", flush=True)
    try:
        asyncio.run(_bench(url, args.entries, args.stock))
    finally:
        server.stop()
    return 0

