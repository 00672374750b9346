"""What a running app holds: built once in the lifespan, read by every handler."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from starlette.requests import Request

from flashclaim.checkout.orders import Orders, held_of
from flashclaim.checkout.quote import HeldCoupon
from flashclaim.claim.caps import CapGuard
from flashclaim.claim.coalescer import ClaimCoalescer
from flashclaim.claim.drawer import Drawer
from flashclaim.claim.gate import ClaimGate
from flashclaim.claim.grant_runner import GrantRunner
from flashclaim.claim.idempotency import IdempotencyKeys
from flashclaim.claim.identity import Authenticator, make_authenticator
from flashclaim.claim.redemption import Redeemer
from flashclaim.claim.service import ClaimService
from flashclaim.fair.keys import Fairness
from flashclaim.keys import KeySpace
from flashclaim.risk.alert_store import AlertStore
from flashclaim.runtime.poll_loop import poll_forever
from flashclaim.settings import Settings
from flashclaim.store.blocklist import Blocklist
from flashclaim.store.buckets import BucketRouter
from flashclaim.store.campaign_store import CampaignStore
from flashclaim.store.cap_store import CapGroups
from flashclaim.store.code_store import CodeStore
from flashclaim.store.connection import Client, StoreError, connect, server_warnings
from flashclaim.store.coupon_store import CouponStore
from flashclaim.store.entry_store import EntryStore
from flashclaim.store.grant_store import GrantStore
from flashclaim.store.order_store import OrderStore
from flashclaim.store.scripts import ReplicaWait, Scripts
from flashclaim.store.templates import TemplateStore
from flashclaim.store.token_store import TokenStore
from flashclaim.triggers.engine import Triggers
from flashclaim.triggers.schedules import Schedules
from flashclaim.web.ledger_reader import LedgerReader
from flashclaim.web.metrics import flush_claims
from flashclaim.web.quote_worker import QuoteWorker
from flashclaim.webhooks.endpoints import EndpointStore

log = logging.getLogger("flashclaim")


@dataclass
class Services:
    settings: Settings
    redis: Client
    scripts: Scripts
    keyspace: KeySpace
    campaigns: CampaignStore
    templates: TemplateStore
    claims: ClaimService
    grants: GrantStore
    grant_runner: GrantRunner
    codes: CodeStore
    coupons: CouponStore
    ledger: LedgerReader  # wallets
    reports: LedgerReader  # operators' reports, on their own thread and connection
    redeemer: Redeemer
    authenticator: Authenticator
    orders: Orders
    quotes: QuoteWorker  # quotes, in a process of their own
    entries: EntryStore  # a fair sale's reads: difficulty, entries, results
    drawer: Drawer  # draws the drawn campaigns when due
    alerts: AlertStore  # risk alerts and their rules
    webhooks: EndpointStore  # webhook endpoints, deliveries, replays
    triggers: Triggers  # events in, and the rules that grant on them
    schedules: Schedules  # recurring grants
    tokens: TokenStore  # named operator tokens and their roles (this service's copy)
    cap_groups: CapGroups  # caps across campaigns (the claim path reads the same copy)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        if settings.redis_url is None:
            raise RuntimeError("no Redis URL: `flashclaim serve` starts an embedded server")
        redis = connect(settings, settings.redis_url)
        scripts = Scripts(redis, ReplicaWait(settings.replica_acks, settings.replica_timeout_ms))
        keyspace = KeySpace(settings.namespace)
        cap_groups = CapGroups(redis, keyspace)
        claims = ClaimService(redis=redis, scripts=scripts, keyspace=keyspace, gate=ClaimGate(),
                              blocklist=Blocklist(redis, scripts, keyspace),
                              buckets=BucketRouter(redis, scripts, keyspace),
                              coalescer=ClaimCoalescer(scripts, keyspace),
                              idempotency=IdempotencyKeys(redis, scripts, keyspace),
                              ip_limit=settings.ip_rate_limit,
                              fairness=Fairness.of(settings.fairness_secret.encode()
                                                   if settings.fairness_secret else None),
                              caps=CapGuard(scripts, keyspace, cap_groups,
                                            max(1, settings.redis_connections // 2)))
        grants = GrantStore(redis, scripts, keyspace)
        secret = settings.code_secret.encode() if settings.code_secret else None
        codes = CodeStore(redis, scripts, keyspace, secret)
        campaigns = CampaignStore(redis, scripts, keyspace)
        ledger = LedgerReader(settings)

        async def held(user_id: str) -> list[HeldCoupon]:
            return await ledger.read(lambda db: held_of(db, user_id))
        return cls(
            settings=settings,
            redis=redis,
            scripts=scripts,
            keyspace=keyspace,
            campaigns=campaigns,
            templates=TemplateStore(redis, scripts, keyspace),
            claims=claims,
            grants=grants,
            grant_runner=GrantRunner(grants, claims),
            codes=codes,
            coupons=CouponStore(redis, scripts, keyspace),
            ledger=ledger,
            reports=LedgerReader(settings),
            redeemer=Redeemer(codes, claims, keyspace),
            authenticator=make_authenticator(settings),
            orders=Orders(OrderStore(redis, scripts, keyspace), held, campaigns.now),
            quotes=QuoteWorker(settings),
            entries=EntryStore(redis, keyspace),
            drawer=Drawer(redis, scripts, keyspace, claims),
            alerts=AlertStore(redis, keyspace),
            webhooks=EndpointStore(redis, keyspace),
            triggers=Triggers(redis, keyspace, grants),
            schedules=Schedules(redis, scripts, keyspace, grants),
            tokens=TokenStore(redis, keyspace),
            cap_groups=cap_groups,
        )

    async def check_server(self) -> None:
        """Warn, at start-up and on /readyz, about a server that may evict or lose claims."""
        self.warnings = await server_warnings(self.redis)
        for warning in self.warnings:
            log.warning("Redis server: %s", warning)

    async def flush_gate(self) -> None:
        """Count the rejections answered from memory, and hand this process's claim metrics
        to Prometheus (once a second: other workers' scrapes see them); never fails."""
        flush_claims()
        try:
            await self.claims.flush_tallies()
        except StoreError as exc:
            log.warning("could not flush rejection counts: %s", exc)

    async def flush_gate_forever(self, every: float = 1.0) -> None:
        await poll_forever(self.flush_gate, asyncio.Event(), every, "rejection counts")

    async def close(self) -> None:
        self.quotes.close()
        self.ledger.close()
        self.reports.close()
        await self.redis.aclose()


def services(request: Request) -> Services:
    """The services the lifespan built, from the request's lifespan state."""
    s: Services = request.state.services
    return s
