"""Finds the Lua scripts, registers each once per client, and wraps them with types.

Scripts are called through redis-py's registered Script objects: EVALSHA, and a
reload on NOSCRIPT, so an emptied script cache (restart, failover, SCRIPT FLUSH)
is transparent. No SHA is cached here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from flashclaim.keys import CampaignKeys, CapKeys, CouponSlotKeys, GrantKeys
from flashclaim.store.connection import run_pipeline, text


def lua_dir() -> Traversable:
    """Inside an installed wheel: flashclaim/lua. In a source checkout: the top-level lua/."""
    packaged = resources.files("flashclaim") / "lua"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "lua"


_INCLUDE = re.compile(r"^--#include ([a-z_]+)(?=\n|\Z)", re.MULTILINE)


def load_sources() -> dict[str, str]:
    """Every lua/*.lua file by its stem, its `--#include name` lines replaced by
    lua/include/<name>.lua (a piece several scripts share: the server clock, the campaign
    guard). Adding a file is all it takes to ship a script."""
    root = lua_dir()
    pieces = {f.name.removesuffix(".lua"): f.read_text(encoding="utf-8")
              for f in (root / "include").iterdir() if f.name.endswith(".lua")}
    return {
        f.name.removesuffix(".lua"): _INCLUDE.sub(lambda m: pieces[m[1]].rstrip("\n"),
                                                  f.read_text(encoding="utf-8"))
        for f in root.iterdir()
        if f.name.endswith(".lua")
    }


class ScriptClaim(Protocol):
    """A claim as claim.lua takes it (flashclaim.claim.decision.ClaimRequest)."""

    @property
    def user_id(self) -> str: ...
    @property
    def client_ip(self) -> str | None: ...
    @property
    def ip_limit(self) -> tuple[int, int] | None: ...
    def packed(self) -> str: ...


# claim.lua's answer for one claim: (code, payload, the user now holds its limit).
ScriptDecision = tuple[str, str, bool]


# Each script answers in one convention, its header's "Returns" block: a status word first
# (then values), or a number. Each status has an enum here, and the wrapper returns it
# (tests/store/test_scripts.py holds each enum to its script's header). claim.lua's codes are
# flashclaim.claim.decision.ClaimCode.


class StockCode(StrEnum):
    """adjust_stock.lua"""

    OK = "ok"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    INSUFFICIENT_STOCK = "insufficient_stock"
    STOCK_LIMIT = "stock_limit"
    UNLIMITED_STOCK = "unlimited_stock"
    STOCK_FIXED = "stock_fixed"


class UpdateCode(StrEnum):
    """update_campaign.lua"""

    OK = "ok"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    CONFLICT = "conflict"
    ENDED = "ended"
    COUPONS_FIXED = "coupons_fixed"
    ENDS_IN_PAST = "ends_in_past"


class EndCode(StrEnum):
    """end_campaign.lua"""

    OK = "ok"
    ALREADY_ENDED = "already_ended"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"


class SubmitCode(StrEnum):
    """submit_grant.lua"""

    OK = "ok"
    AT_FIXED = "at_fixed"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"


class FinishCode(StrEnum):
    """finish_grant.lua"""

    DONE = "done"
    MORE = "more"
    MISSING = "missing"


class RecordCode(StrEnum):
    """record_grant_outcomes.lua, store_codes.lua"""

    OK = "ok"
    MOVED = "moved"


class BatchCode(StrEnum):
    """create_code_batch.lua"""

    OK = "ok"
    CAMPAIGN_NOT_FOUND = "campaign_not_found"
    BUCKETED = "bucketed"
    TOO_MANY_CODES = "too_many_codes"


class UseCode(StrEnum):
    """use_coupon.lua"""

    USED = "used"
    REPLAY = "replay"
    COUPON_USED = "coupon_used"
    COUPON_EXPIRED = "coupon_expired"
    DISCOUNT_TOO_LARGE = "discount_too_large"
    RELEASED = "released"
    ORDER_MISMATCH = "order_mismatch"
    ORDER_MANAGED = "order_managed"
    COUPON_NOT_FOUND = "coupon_not_found"


class DrawCode(StrEnum):
    """Mirrors the states start_draw.lua returns."""

    MISSING = "missing"
    WAIT = "wait"
    DONE = "done"
    DRAWING = "drawing"


class OrderCouponCode(StrEnum):
    """order_coupon.lua"""

    LOCKED = "locked"
    COUPON_USED = "coupon_used"
    COUPON_LOCKED = "coupon_locked"
    COUPON_EXPIRED = "coupon_expired"
    DISCOUNT_TOO_LARGE = "discount_too_large"
    COUPON_NOT_FOUND = "coupon_not_found"
    USED = "used"
    NOT_LOCKED = "not_locked"
    RELEASED = "released"
    REFUNDED = "refunded"
    NOT_USED = "not_used"


class OrderCode(StrEnum):
    """order_state.lua"""

    NEW = "new"
    EXISTING = "existing"
    CONFLICT = "conflict"
    OK = "ok"
    REPLAY = "replay"
    MISSING = "missing"
    EXPIRED = "expired"
    REFUSED = "refused"
    NOT_DUE = "not_due"


class CreateCode(IntEnum):
    """create_campaign.lua"""

    CREATED = 1
    EXISTS = 0
    RETIRED = -1


class TakeCode(IntEnum):
    """bucket_take.lua"""

    ADDED = 1
    TAKEN_BEFORE = 0
    NO_BUCKET = -1


class MirrorCode(IntEnum):
    """mirror_campaign.lua"""

    CREATED = 2
    UPDATED = 1
    SAME = 0


REPLY_CODES: dict[str, type[StrEnum] | type[IntEnum]] = {
    "adjust_stock": StockCode, "update_campaign": UpdateCode, "end_campaign": EndCode,
    "submit_grant": SubmitCode, "finish_grant": FinishCode, "record_grant_outcomes": RecordCode,
    "store_codes": RecordCode, "create_code_batch": BatchCode, "use_coupon": UseCode,
    "create_campaign": CreateCode, "bucket_take": TakeCode, "mirror_campaign": MirrorCode,
    "order_coupon": OrderCouponCode, "order_state": OrderCode,
}


class NotReplicated(RedisError):
    """A claim batch was decided, but fewer replicas than required acknowledged it in time:
    answered 503 like any store failure (a retry with the same request id is a replay)."""


@dataclass(frozen=True, slots=True)
class ReplicaWait:
    """Before a claim batch is answered, WAIT until `acks` replicas have it (at most
    `timeout_ms`). 0 acks: no wait (asynchronous replication, the default)."""

    acks: int = 0
    timeout_ms: int = 100


class Scripts:
    """The registered scripts of one client."""

    def __init__(self, redis: Redis, replica_wait: ReplicaWait | None = None) -> None:
        self._redis = redis
        self._wait = replica_wait or ReplicaWait()
        self._by_name: dict[str, AsyncScript] = {
            name: redis.register_script(source) for name, source in load_sources().items()
        }

    def _script(self, name: str) -> AsyncScript:
        return self._by_name[name]

    @property
    def shas(self) -> list[str]:
        return [s.sha for s in self._by_name.values()]

    @property
    def sources(self) -> list[str]:
        """Script texts, in the order of `shas`."""
        return [text(s.script) for s in self._by_name.values()]

    async def ensure_loaded(self) -> None:
        """The server answers and holds every script: after a restart or SCRIPT FLUSH they
        are loaded now rather than on a claim (the same text gives the same SHA)."""
        await self._redis.ping()
        loaded = await self._redis.script_exists(*self.shas)
        for source, ok in zip(self.sources, loaded, strict=True):
            if not ok:
                await self._redis.script_load(source)

    async def claim(self, keys: CampaignKeys, requests: Sequence[ScriptClaim]
                    ) -> list[ScriptDecision]:
        """Decide a batch of claims on one campaign, in order, in one atomic call."""
        script_keys = keys.script_keys() + [keys.rate_limit(r.user_id) for r in requests]
        if any(r.client_ip and r.ip_limit for r in requests):  # KEYS[9+n+i], one per claim
            script_keys += [keys.ip_rate_limit(r.client_ip or "-") for r in requests]
        args = [r.packed() for r in requests]
        flat = await self._durably("claim", script_keys, args)
        return [(text(flat[i]), text(flat[i + 1]), text(flat[i + 2]) == "1")
                for i in range(0, len(flat), 3)]

    async def _durably(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """A script whose effect is answered for (a grant, a stock transfer): with replica
        acks required, only once that many replicas have it."""
        if self._wait.acks:
            return await self._replicated(name, keys, args)
        return await self._script(name)(keys=keys, args=args)

    async def _replicated(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """The script then WAIT on the same connection (WAIT counts the replicas that have
        this connection's writes): one pipeline, sent to the master of the keys' slot."""
        script = self._script(name)
        flat, acked = await self._then_wait("EVALSHA", script.sha, keys, args)
        if isinstance(flat, NoScriptError):  # a restarted or promoted server: send the text
            flat, acked = await self._then_wait("EVAL", text(script.script), keys, args)
        for reply in (flat, acked):
            if isinstance(reply, Exception):
                raise reply
        if int(acked) < self._wait.acks:
            raise NotReplicated(f"{acked} of {self._wait.acks} replicas acknowledged within "
                                f"{self._wait.timeout_ms} ms")
        return flat

    async def _then_wait(self, command: str, script: str, keys: list[str], args: list[str]
                         ) -> list[Any]:
        target: dict[str, Any] = {}
        if isinstance(self._redis, AsyncRedisCluster):  # a keyless command needs its node
            target["target_nodes"] = self._redis.get_node_from_key(keys[0])
        pipe = self._redis.pipeline(transaction=False)
        pipe.execute_command(command, script, len(keys), *keys, *args)
        pipe.execute_command("WAIT", self._wait.acks, self._wait.timeout_ms, **target)
        return await run_pipeline(pipe, raise_on_error=False)

    async def release_idempotency(self, key: str, fingerprint: str) -> bool:
        return bool(await self._script("release_idempotency")(keys=[key], args=[fingerprint]))

    async def create_campaign(self, keys: CampaignKeys, fields: list[str | int]) -> CreateCode:
        return CreateCode(int(await self._script("create_campaign")(
            keys=[keys.meta, keys.retired], args=fields)))

    async def start_draw(self, keys: CampaignKeys) -> tuple[DrawCode, str]:
        """Begin a drawn campaign's draw by the Redis clock (lua/start_draw.lua)."""
        state, detail = await self._script("start_draw")(keys=[keys.meta], args=[])
        return DrawCode(text(state)), text(detail)

    async def advance_schedule(self, runs_key: str, schedule_id: str, last_ms: int,
                               run_ms: int) -> bool:
        """Record a schedule's run unless another service did (advance_schedule.lua)."""
        return bool(await self._script("advance_schedule")(
            keys=[runs_key], args=[schedule_id, last_ms, run_ms]))

    async def cap_reserve(self, keys: CapKeys, reservation: str, pack: int,
                          max_unused: int | None, max_daily: int | None, tz_rules: str,
                          life_ms: int) -> tuple[str, str]:
        """Room under a user's cap (lua/cap_reserve.lua): "reserved" or a refusal code,
        and its payload."""
        code, payload = await self._script("cap_reserve")(
            keys=keys.script_keys(),
            args=[reservation, pack, "" if max_unused is None else max_unused,
                  "" if max_daily is None else max_daily, tz_rules, life_ms])
        return text(code), text(payload)

    async def cap_settle(self, keys: CapKeys, reservation: str, claim_id: str,
                         granted_at: int, coupons: list[tuple[str, int]]) -> bool:
        """A reservation settled (lua/cap_settle.lua): True when a grant was recorded now."""
        flat = [x for coupon in coupons for x in coupon]
        return bool(await self._script("cap_settle")(
            keys=keys.script_keys(), args=[reservation, claim_id, granted_at, *flat]))

    async def top_up_budget(self, keys: CampaignKeys, delta: int) -> tuple[str, int | None]:
        """Raise a campaign's budget (lua/top_up_budget.lua): the code and the new budget."""
        code, budget = await self._script("top_up_budget")(keys=[keys.meta], args=[delta])
        return text(code), int(text(budget)) if text(budget) else None

    async def set_paused(self, keys: CampaignKeys, paused: bool) -> bool:
        args = ["1" if paused else "0"]
        return bool(await self._script("set_paused")(keys=[keys.meta], args=args))

    async def update_campaign(self, keys: CampaignKeys, rev: int, coupons_change: bool,
                              ends_at: int | None, fields: list[str | int]
                              ) -> tuple[UpdateCode, str]:
        code, detail = await self._script("update_campaign")(
            keys=[keys.meta],
            args=[rev, "1" if coupons_change else "0", "" if ends_at is None else ends_at,
                  *fields])
        return UpdateCode(text(code)), text(detail)

    async def end_campaign(self, keys: CampaignKeys) -> tuple[EndCode, str]:
        code, detail = await self._script("end_campaign")(keys=[keys.meta], args=[])
        return EndCode(text(code)), text(detail)

    async def add_template_version(self, key: str, index: str, template_id: str, body: str,
                                   max_versions: int) -> int:
        return int(await self._script("add_template_version")(
            keys=[key, index], args=[template_id, body, max_versions]))

    async def submit_grant(self, keys: CampaignKeys, grant_id: str, at: int | None,
                           users: list[str]) -> tuple[SubmitCode, int, int]:
        """(code, users added, the grant's start in epoch ms); see submit_grant.lua."""
        grant = keys.grant(grant_id)
        code, added, _, _, start = await self._script("submit_grant")(
            keys=[grant.meta, grant.users, grant.outcomes, keys.meta, keys.grants,
                  keys.grants_undone],
            args=[grant_id, "" if at is None else at, *users])
        return SubmitCode(text(code)), int(added), int(start or 0)

    async def finish_grant(self, keys: CampaignKeys, grant_id: str) -> FinishCode:
        code, *_ = await self._script("finish_grant")(
            keys=[keys.grant(grant_id).meta, keys.grants_undone], args=[grant_id])
        return FinishCode(text(code))

    async def record_grant_outcomes(self, grant: GrantKeys, start: int, end: int,
                                    outcomes: Sequence[tuple[str, str]]
                                    ) -> tuple[RecordCode, int, int]:
        code, done, total = await self._script("record_grant_outcomes")(
            keys=[grant.meta, grant.outcomes],
            args=[start, end, *(x for pair in outcomes for x in pair)])
        return RecordCode(text(code)), int(done), int(total)

    async def create_code_batch(self, keys: CampaignKeys, batch_id: str, count: int, uses: int,
                                per_user: int, nonce: str, max_codes: int
                                ) -> tuple[BatchCode, int]:
        code, issued = await self._script("create_code_batch")(
            keys=[keys.meta, keys.codes_issued, keys.code_batch(batch_id), keys.code_batches],
            args=[batch_id, count, uses, nonce, max_codes, per_user])
        return BatchCode(text(code)), int(issued)

    async def store_codes(self, keys: CampaignKeys, batch_id: str, start: int, value: str,
                          hashes: list[str]) -> tuple[RecordCode, int]:
        code, generated = await self._script("store_codes")(
            keys=[keys.code_batch(batch_id), keys.codes()], args=[start, value, *hashes])
        return RecordCode(text(code)), int(generated)

    async def claim_code_export(self, batch_keys: list[str]) -> list[str]:
        """Each batch's nonce, taken out of it, or "" (claim_code_export.lua)."""
        return [text(n) for n in await self._script("claim_code_export")(keys=batch_keys,
                                                                          args=[])]

    async def use_coupon(self, keys: CouponSlotKeys, action: str, coupon_id: str,
                         order_id: str, discount: int) -> tuple[UseCode, list[str]]:
        """The code, and the coupon's campaign, user, valid_until, order, discount, at."""
        code, *rest = await self._script("use_coupon")(
            keys=[keys.coupons, keys.uses, keys.events, keys.event_counts],
            args=[action, coupon_id, order_id, discount])
        return UseCode(text(code)), [text(x) for x in rest]

    async def order_coupon(self, keys: CouponSlotKeys, action: str, coupon_id: str,
                           order_id: str, user_id: str = "", discount: int = 0,
                           hold_until: int = 0, gmv: int = 0
                           ) -> tuple[OrderCouponCode, str, int]:
        """One coupon's step for an order: (code, the order concerned, the hold's end)."""
        code, order, hold = await self._durably(
            "order_coupon", [keys.coupons, keys.uses, keys.events, keys.event_counts],
            [action, coupon_id, order_id, user_id, discount, hold_until, gmv])
        return OrderCouponCode(text(code)), text(order), int(text(hold) or 0)

    async def order_state(self, order_key: str, action: str, *args: str | int
                          ) -> tuple[OrderCode, list[str]]:
        """An order's state change: the code and the record's fields (state, applied, plan,
        gmv, discount, hold_until, user, reason, channel)."""
        code, *fields = await self._durably("order_state", [order_key], [action, *args])
        return OrderCode(text(code)), [text(f) for f in fields]

    async def bucket_give(self, keys: CampaignKeys, transfer_id: str, to_bucket: int,
                          most: int | None) -> tuple[int, int, str]:
        """The units given, the budget and a random coupon's values moved with them (0, 0,
        "": nothing to give)."""
        # Durable before the stock is taken elsewhere: a failover must not give it back here.
        units, budget, values = await self._durably(
            "bucket_give", [keys.meta, keys.transfers_out],
            [transfer_id, to_bucket, "" if most is None else most])
        return int(units), int(budget), text(values)

    async def bucket_take(self, keys: CampaignKeys, transfer_id: str, amount: int,
                          budget: int, values: str = "") -> TakeCode:
        # Durable before the transfer is settled: a failover must not lose the stock.
        return TakeCode(int(await self._durably("bucket_take", [keys.meta, keys.transfers_in],
                                                [transfer_id, amount, budget, values])))

    async def mirror_campaign(self, keys: CampaignKeys, bucket: int, n: int, defv: int,
                              unlimited: bool, budgeted: bool, fields: list[str]
                              ) -> MirrorCode:
        return MirrorCode(int(await self._script("mirror_campaign")(
            keys=[keys.meta], args=[bucket, n, defv, "1" if unlimited else "0",
                                    "1" if budgeted else "0", *fields])))

    async def blocklist_change(self, keys: list[str], op: str, user_id: str, entry: str,
                               log_kept: int) -> tuple[bool, int]:
        """(changed, revision); keys: list, revision, log, index (blocklist_change.lua)."""
        changed, rev = await self._script("blocklist_change")(
            keys=keys, args=[op, user_id, entry, log_kept])
        return bool(changed), int(rev)

    async def take_attempt(self, key: str, allowance: int, window_ms: int) -> int | None:
        """None when taken; else the ms until the window ends (take_attempt.lua)."""
        taken, detail = await self._script("take_attempt")(keys=[key],
                                                           args=[allowance, window_ms])
        return None if int(taken) else int(detail)

    async def return_attempt(self, key: str) -> None:
        await self._script("return_attempt")(keys=[key], args=[])

    async def renew_lease(self, key: str, owner: str, ms: int) -> bool:
        return bool(await self._script("renew_lease")(keys=[key], args=[owner, ms]))

    async def adjust_stock(
        self, keys: CampaignKeys, delta: int, max_stock: int
    ) -> tuple[StockCode, int, int]:
        code, stock, remaining = await self._script("adjust_stock")(
            keys=[keys.meta], args=[delta, max_stock]
        )
        return StockCode(text(code)), int(stock), int(remaining)

