"""The only place Redis key names are built (the layouts of values joined by \x1f that
some of them hold are in packed.py).

Every key of one campaign carries the campaign id as its hash tag, so one script
can touch them all on Redis Cluster. Ids that users supply are validated to
exclude '{' and '}', so they can never move a key to another slot.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import lru_cache
from itertools import count

from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from flashclaim.codes import campaign_slot, slot_tag

# A bucket's keys are named after "<campaign id>~<bucket>.<salt>": "~" is outside the
# campaign id alphabet, so a bucket's tag can never be another campaign's id.
BUCKET_MARK = "~"


@dataclass(frozen=True, slots=True)
class GrantKeys:
    """One operator grant, under its campaign's hash tag (see lua/submit_grant.lua)."""

    meta: str  # hash: state, at, created_at, total, done, n:<outcome> counts
    users: str  # list: "<user>\x1f<,tags,>" in submission order
    outcomes: str  # hash: user -> "" (pending) or the outcome


@dataclass(frozen=True, slots=True)
class CouponSlotKeys:
    """Coupons after the grab, kept per hash slot (a coupon id names its slot), so the
    checkout system's redeem finds them with no lookup, also on Redis Cluster."""

    coupons: str  # hash: coupon id -> "<campaign>\x1f<valid_until ms>\x1f<user>\x1f<cap>"
    uses: str  # hash: coupon id -> "<order>\x1f<discount>\x1f<used_at ms>", while used
    events: str  # stream: redemption and release events, for the ledger
    event_counts: str  # hash: "<campaign>\x1f<event>" -> events ever written (for reconcile)


@dataclass(frozen=True, slots=True)
class CapKeys:
    """One user's standing in one cap group, under the user's own hash tag (see
    lua/cap_reserve.lua): every key expires with what it holds."""

    held: str  # sorted set: coupon id -> valid_until ms (unused coupons of the group)
    pending: str  # sorted set: "<claim id>\x1f<coupons>" -> when the reservation lapses
    daily: str  # sorted set: claim id -> when granted (two days kept)

    def script_keys(self) -> list[str]:
        return [self.held, self.pending, self.daily]


@dataclass(frozen=True, slots=True)
class CampaignKeys:
    meta: str  # hash: definition and live counters (stock, remaining, granted, paused)
    users: str  # hash: user_id -> grants held
    dedup: str  # hash: dedup token -> claim JSON, for replays
    rejected: str  # hash: error code -> count
    stream: str  # stream: one entry per grant
    daily: str  # hash: user_id -> "<local day number>:<grants that day>"
    dead_letter: str  # stream: entries a consumer could not process, with the reason
    grants: str  # sorted set: the campaign's grant ids, scored by creation time
    grants_undone: str  # sorted set: grant ids with users still to decide, scored by start
    code_batches: str  # sorted set: the campaign's code batch ids, scored by creation time
    codes_issued: str  # string: codes ever generated for the campaign (capped)
    transfers_out: str  # hash: transfer id -> "<to bucket>\x1f<amount>\x1f<at ms>" until settled
    transfers_in: str  # hash: transfer id -> amount, every transfer ever received (idempotence)
    retired: str  # string: "<ms>" when retention removed the campaign; its id stays taken
    devices: str  # hash: device id -> grants (entries, when drawn); with a per_device_limit
    spent: str  # sorted set: spent proof-of-work token ids scored by expiry (claim.lua trims)
    entries: str  # hash: a drawn campaign's entrants, user_id -> "<entered_at>\x1f<device>"
    draw_lease: str  # string held (PX) by the one service drawing the campaign right now
    control: str  # hash: the holdout's control users seen, user_id -> first decision (ms)
    holdout: str  # stream: one entry per control user, the first time one is decided
    _rate_prefix: str
    _grant_prefix: str
    _code_batch_prefix: str
    _namespace: str
    _campaign_id: str

    def codes(self) -> str:
        """Hash of the redemption codes of this campaign's hash slot: code hash ->
        "<campaign id>:<uses left>". Named with a tag of the same slot (codes.slot_tag),
        so a code, which carries the slot, finds it on Redis Cluster with no lookup."""
        tag = slot_tag(campaign_slot(self._campaign_id))
        return f"{self._namespace}:{{{tag}}}:codes"

    def code_users(self) -> str:
        """Hash of code redemptions per user in this campaign's hash slot:
        "<code hash>\x1f<user>" -> count (a code's uses_per_user is held to it)."""
        tag = slot_tag(campaign_slot(self._campaign_id))
        return f"{self._namespace}:{{{tag}}}:code-users"

    def coupon_slot(self) -> CouponSlotKeys:
        """The redemption keys of this campaign's hash slot (shared with its neighbours)."""
        return KeySpace(self._namespace).coupon_slot(campaign_slot(self._campaign_id))

    def code_batch(self, batch_id: str) -> str:
        """Hash of one batch of codes: count, uses, generated, nonce, state."""
        return self._code_batch_prefix + batch_id

    def grant(self, grant_id: str) -> GrantKeys:
        base = self._grant_prefix + grant_id
        return GrantKeys(meta=base, users=base + ":users", outcomes=base + ":outcomes")

    # Users and client addresses count in separate namespaces ("u:" and "ip:"): a user
    # named "ip:203.0.113.7" must not share the counter of that address.
    def rate_limit(self, user_id: str) -> str:
        """String counter of one user's taps in the current rate-limit window."""
        return self._rate_prefix + "u:" + user_id

    def ip_rate_limit(self, client_ip: str) -> str:
        """String counter of one client IP's taps on this campaign in the current window."""
        return self._rate_prefix + "ip:" + client_ip

    def all_keys(self) -> list[str]:
        """Every long-lived key of the campaign (rate-limit counters expire on their own)."""
        return [self.meta, self.users, self.dedup, self.rejected, self.stream, self.daily,
                self.dead_letter, self.grants, self.grants_undone, self.code_batches,
                self.codes_issued,
                self.transfers_out, self.transfers_in, self.devices, self.spent, self.entries,
                self.control, self.holdout]

    def script_keys(self) -> list[str]:
        """KEYS[1..14] of claim.lua, in order."""
        return [self.meta, self.users, self.dedup, self.rejected, self.stream, self.daily,
                self.codes(), self.coupon_slot().coupons, self.code_users(), self.devices,
                self.spent, self.entries, self.control, self.holdout]


@dataclass(frozen=True, slots=True)
class KeySpace:
    namespace: str

    def campaign(self, campaign_id: str) -> CampaignKeys:
        base = f"{self.namespace}:{{{campaign_id}}}:"
        return CampaignKeys(
            meta=base + "campaign",
            users=base + "users",
            dedup=base + "dedup",
            rejected=base + "rejected",
            stream=base + "claims",
            daily=base + "daily",
            dead_letter=base + "dead",
            grants=base + "grants",
            grants_undone=base + "grants-undone",
            code_batches=base + "codebatches",
            codes_issued=base + "codes-issued",
            transfers_out=base + "transfers-out",
            transfers_in=base + "transfers-in",
            retired=base + "retired",
            devices=base + "devices",
            spent=base + "spent",
            entries=base + "entries",
            draw_lease=base + "draw-lease",
            control=base + "control",
            holdout=base + "holdout",
            _rate_prefix=base + "rl:",
            _grant_prefix=base + "grant:",
            _code_batch_prefix=base + "codebatch:",
            _namespace=self.namespace,
            _campaign_id=campaign_id,
        )

    def buckets(self, campaign_id: str, n: int) -> list[CampaignKeys]:
        """The keys of each of a campaign's n buckets; bucket 0 is the campaign's own."""
        return [self.campaign(bucket_key_id(campaign_id, b, n)) for b in range(n)]

    @property
    def bucketed(self) -> str:
        """Hash of the campaigns spread over more than one bucket: id -> bucket count."""
        return f"{self.namespace}:campaigns:bucketed"

    @property
    def registry(self) -> str:
        """Sorted set of every campaign id, scored by creation time (epoch ms)."""
        return f"{self.namespace}:campaigns"

    @property
    def open_campaigns(self) -> str:
        """Sorted set of scheduled and live campaigns (not ended), scored by starts_at:
        what GET /v1/campaigns reads, so it never scans campaigns long over."""
        return f"{self.namespace}:campaigns:open"

    @property
    def campaign_ends(self) -> str:
        """Sorted set of campaigns with an end, scored by ends_at: the retention sweep's list."""
        return f"{self.namespace}:campaigns:ends"

    @property
    def pending_grants(self) -> str:
        """Sorted set of grants with users still to process, "<campaign>/<grant>" scored by
        when to start (epoch ms): what every service's grant runner polls."""
        return f"{self.namespace}:grants:pending"

    def coupon_slot(self, slot: int) -> CouponSlotKeys:
        """The redemption keys of one hash slot (see lua/use_coupon.lua)."""
        base = f"{self.namespace}:{{{slot_tag(slot)}}}:"
        return CouponSlotKeys(coupons=base + "coupons", uses=base + "coupon-uses",
                              events=base + "coupon-events",
                              event_counts=base + "coupon-event-counts")

    def order(self, order_id: str) -> str:
        """Hash of one order of the orders API (lua/order_state.lua), under its own hash tag
        (a checkout's order id, ORDER_ID_RE: bounded, and the record expires)."""
        return f"{self.namespace}:{{o:{order_id}}}:order"

    @property
    def orders_due(self) -> str:
        """Sorted set of orders with work left, scored by when (epoch ms): a hold to end,
        coupon steps to finish. What every service's order sweep polls."""
        return f"{self.namespace}:orders:due"

    @property
    def draws_due(self) -> str:
        """Sorted set of drawn campaigns whose draw is not done, scored by draw_at (epoch
        ms): what every service's drawer polls (flashclaim/fair/draw.py)."""
        return f"{self.namespace}:draws:due"

    @property
    def outbox(self) -> str:
        """Stream of the events webhooks deliver (flashclaim/outbox.py), trimmed by the
        dispatcher once delivered to every endpoint's queue and past their retention."""
        return f"{self.namespace}:{{webhooks}}:outbox"

    @property
    def webhooks(self) -> str:
        """Hash of the webhook endpoints: id -> JSON (url, events, secret, ...)."""
        return f"{self.namespace}:{{webhooks}}:endpoints"

    @property
    def campaign_statuses(self) -> str:
        """Hash of each campaign's status as last told (campaign.* events): id -> status."""
        return f"{self.namespace}:{{webhooks}}:statuses"

    @property
    def reminder_marks(self) -> str:
        """Hash of how far coupon.expiring reminders went: days -> epoch ms of the last
        valid_until reminded."""
        return f"{self.namespace}:{{webhooks}}:reminded"

    def webhook_queue(self, endpoint_id: str) -> str:
        """Stream of one endpoint's events still to deliver, in order (its lane)."""
        return f"{self.namespace}:{{wh:{endpoint_id}}}:queue"

    def webhook_head(self, endpoint_id: str) -> str:
        """Hash of the lane's head event's retries: entry, attempts, first_at, next_at."""
        return f"{self.namespace}:{{wh:{endpoint_id}}}:head"

    def webhook_deliveries(self, endpoint_id: str) -> str:
        """Stream of the endpoint's last delivery attempts (capped)."""
        return f"{self.namespace}:{{wh:{endpoint_id}}}:deliveries"

    def webhook_dead(self, endpoint_id: str) -> str:
        """Stream of the endpoint's events given up on after a day of retries."""
        return f"{self.namespace}:{{wh:{endpoint_id}}}:dead"

    def webhook_lease(self, endpoint_id: str) -> str:
        """String held (PX) by the one dispatcher delivering to this endpoint."""
        return f"{self.namespace}:{{wh:{endpoint_id}}}:lease"

    # ---- events in (flashclaim/triggers): each kept for FACTS_MS, so none grows forever --

    def event_seen(self, event_id: str) -> str:
        """String: the outcome of an event already received (its id digested: an event id
        is the caller's text, braces included)."""
        return f"{self.namespace}:ev:seen:{key_digest(event_id)}"

    def signup_of(self, user_id: str) -> str:
        """String: when the user signed up (epoch ms), from its signup event."""
        return f"{self.namespace}:ev:signup:{user_id}"

    def first_event(self, event_type: str, user_id: str) -> str:
        """String, written once (NX): the user's first event of this type."""
        return f"{self.namespace}:ev:first:{event_type}:{user_id}"

    def referrer_of(self, user_id: str) -> str:
        """String: who referred the user (its referral event)."""
        return f"{self.namespace}:ev:referrer:{user_id}"

    def users_by_event(self, event_type: str) -> str:
        """Sorted set: the users who sent this type of event, scored by the last one (ms);
        trimmed to FACTS_MS by every schedule run that reads it."""
        return f"{self.namespace}:ev:users:{event_type}"

    @property
    def schedules(self) -> str:
        """Hash of the recurring grants: schedule id -> JSON (its definition)."""
        return f"{self.namespace}:schedules"

    def schedule_recalled(self, schedule_id: str) -> str:
        """Sorted set of the users an inactive-users schedule recalled, scored by their last
        activity then: recalled again only once active again since."""
        return f"{self.namespace}:schedules:recalled:{schedule_id}"

    @property
    def schedule_runs(self) -> str:
        """Hash: schedule id -> "<last run ms>:<runs>" (lua/advance_schedule.lua)."""
        return f"{self.namespace}:schedules:runs"

    @property
    def trigger_rules(self) -> str:
        """Hash of the rules that grant on events: rule id -> JSON."""
        return f"{self.namespace}:rules"

    @property
    def trigger_rule_counts(self) -> str:
        """Hash: rule id -> grants the rule submitted."""
        return f"{self.namespace}:rules:grants"

    @property
    def risk_rules(self) -> str:
        """Hash of the operators' changes to the alert rules: rule -> JSON."""
        return f"{self.namespace}:risk:rules"

    @property
    def risk_alerts(self) -> str:
        """Hash of the alerts raised: alert id ("<rule>:<subject>:<window>") -> JSON."""
        return f"{self.namespace}:risk:alerts"

    @property
    def risk_alert_index(self) -> str:
        """Sorted set of the alert ids, scored by when raised (the newest are listed)."""
        return f"{self.namespace}:risk:alerts:index"

    @property
    def risk_alert_counts(self) -> str:
        """Hash of alerts ever raised, rule -> count (what /metrics shows)."""
        return f"{self.namespace}:risk:alert-counts"

    def risk_window(self, rule: str, subject: str, window: int) -> str:
        """Counter of one rule's subject in one window (PX: two windows), and beside it
        (":users") the set of users it saw there. Subjects are keyed hashes or campaign
        ids: bounded by the windows' expiry."""
        return f"{self.namespace}:risk:w:{rule}:{subject}:{window}"

    @property
    def cap_groups(self) -> str:
        """Hash of the cap groups: name -> JSON settings (flashclaim/store/cap_store.py)."""
        return f"{self.namespace}:cap-groups"

    def cap(self, group: str, user_id: str) -> CapKeys:
        """A user's keys in one cap group, in the user's own slot (user ids and group names
        exclude braces)."""
        base = f"{self.namespace}:{{u:{user_id}}}:cap:{group}:"
        return CapKeys(held=base + "held", pending=base + "pending", daily=base + "daily")

    def risk_seen(self, user_id: str) -> str:
        """String (PX 30 days): the user was granted a coupon lately (not first-seen)."""
        return f"{self.namespace}:risk:seen:{user_id}"

    def code_failure_tally(self, minute: int) -> str:
        """Counter of failed redemption codes, service-wide, in one minute (PX 1 hour)."""
        return f"{self.namespace}:risk:codefail:{minute}"

    @property
    def ledger_stats(self) -> str:
        """Hash of the ledger consumers' running totals, "<what>:<group>" -> count (what
        /metrics shows as the ledger's throughput)."""
        return f"{self.namespace}:ledger-stats"

    @property
    def purchases(self) -> str:
        """Stream of the paid orders told by events (order_paid), for the uplift report."""
        return f"{self.namespace}:purchases"

    @property
    def holdout_streams(self) -> str:
        """Set of the holdout streams of campaigns with a holdout: how a ledger consumer
        finds them."""
        return f"{self.namespace}:holdout-streams"

    @property
    def coupon_event_streams(self) -> str:
        """Set of every coupon-event stream in use: how a ledger consumer finds them."""
        return f"{self.namespace}:coupon-event-streams"

    @property
    def pending_code_batches(self) -> str:
        """Sorted set of code batches still generating, "<campaign>/<batch>"."""
        return f"{self.namespace}:codes:pending"

    @property
    def grant_campaigns(self) -> str:
        """Set of the campaigns that have grants: what the grant sweep walks to find a grant
        whose pending entry was lost (a crash between a submit's two steps)."""
        return f"{self.namespace}:grants:campaigns"

    @property
    def grant_sweep_lease(self) -> str:
        """String held (PX) by the one runner sweeping for lost grants this period."""
        return f"{self.namespace}:grants:sweep-lease"

    def code_batch_lease(self, campaign_id: str, batch_id: str) -> str:
        return f"{self.namespace}:codes:lease:{campaign_id}/{batch_id}"

    def code_failures(self, who: str) -> str:
        """Failed redemptions of one user ("u:<id>") or address ("ip:<ip>") in the current
        window (PX): the brute-force limiter. Expires, so it never outgrows its window."""
        return f"{self.namespace}:codefail:{who}"

    def grant_lease(self, campaign_id: str, grant_id: str) -> str:
        """String held (PX) by the one runner processing a grant right now."""
        return f"{self.namespace}:grants:lease:{campaign_id}/{grant_id}"

    @property
    def templates(self) -> str:
        """Sorted set of template ids, all scored 0: ordered by id."""
        return f"{self.namespace}:{{templates}}:index"

    def template(self, template_id: str) -> str:
        """Hash of one template: "latest" -> n, and "1".."n" -> each version's JSON."""
        return f"{self.namespace}:{{templates}}:t:{template_id}"

    @property
    def audit(self) -> str:
        """Stream of every write through the admin API (and the CLI's): who, what, result,
        when (flashclaim/audit_log.py). Never trimmed by the service."""
        return f"{self.namespace}:{{audit}}:log"

    @property
    def tokens(self) -> str:
        """Hash of the named operator tokens: name -> {"role", "digest", "created_at"} JSON."""
        return f"{self.namespace}:{{tokens}}"

    @property
    def token_digests(self) -> str:
        """Hash: a token's SHA-256 -> its name (how a request's token is found)."""
        return f"{self.namespace}:{{tokens}}:digests"

    @property
    def tokens_rev(self) -> str:
        """Counter bumped by every token change: services re-read the tokens when it moves."""
        return f"{self.namespace}:{{tokens}}:rev"

    @property
    def blocklist(self) -> str:
        """Hash of blocked users: user_id -> {"reason", "blocked_at"} JSON."""
        return f"{self.namespace}:{{blocklist}}"

    @property
    def blocklist_changes(self) -> str:
        """Stream of the last blocklist changes, entry id "<revision>-0" (op, user)."""
        return f"{self.namespace}:{{blocklist}}:changes"

    @property
    def blocklist_index(self) -> str:
        """Sorted set of the blocked users, all scored 0: the listing pages by id."""
        return f"{self.namespace}:{{blocklist}}:index"

    @property
    def blocklist_rev(self) -> str:
        """Counter bumped by every blocklist change: services re-read the list when it moves."""
        return f"{self.namespace}:{{blocklist}}:rev"

    @property
    def idempotency_pattern(self) -> str:
        """A SCAN/KEYS pattern for every Idempotency-Key binding (for operators and tests)."""
        return f"{self.namespace}:idem:*"

    def idempotency(self, user_id: str, idempotency_key: str) -> str:
        """Binds one user's Idempotency-Key to the first campaign and body it was used with."""
        return f"{self.namespace}:idem:{user_id}:{key_digest(idempotency_key)}"


@lru_cache(maxsize=4096)
def bucket_key_id(campaign_id: str, bucket: int, n: int) -> str:
    """What stands for the campaign id in the key names of one of its n buckets.

    Bucket 0 is the campaign id itself. Bucket b's name is salted until its hash slot
    falls b segments after bucket 0's, the slot space cut in n equal segments: with
    slots spread evenly over the masters (as `--cluster create` does), n buckets on n
    masters land on n different ones. Deterministic: every process finds the same name.
    """
    if bucket == 0:
        return campaign_id
    width = REDIS_CLUSTER_HASH_SLOTS // n

    def segment(slot: int) -> int:
        return min(slot // width, n - 1)

    target = (segment(campaign_slot(campaign_id)) + bucket) % n
    for salt in count():
        candidate = f"{campaign_id}{BUCKET_MARK}{bucket}.{salt}"
        if segment(campaign_slot(candidate)) == target:
            return candidate
    raise AssertionError("unreachable")


def home_bucket(user_id: str, n: int) -> int:
    """The one bucket that holds a user's counts (and so decides all their claims)."""
    return 0 if n == 1 else zlib.crc32(user_id.encode()) % n


def key_digest(idempotency_key: str) -> str:
    """A fixed-size, brace-free stand-in for a client's Idempotency-Key inside key names."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
