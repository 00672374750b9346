"""flashclaim load scenarios: hammer the service and get a verdict you can trust.

    locust -f loadtests/locustfile.py --headless -u 300 -r 100 -t 60s \
        --host http://127.0.0.1:8000 --admin-token "$(cat .flashclaim/admin-token)"

The master (or the local runner) creates the campaigns at test start; workers get
their ids with the spawn message. Workers report every claim they saw granted; at
the end the master compares that with what the service recorded, prints a
verdict and exits non-zero on any oversell, loss, duplicate or server error.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import secrets
import subprocess
import sys
import time
from typing import Any

import gevent
import orjson
from locust import FastHttpUser, between, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from flashclaim.checks.verdict import Breach, ClientFacts, format_verdict, judge

from campaigns import Plan, admin_token_problem, create_all, end_all, server_facts

log = logging.getLogger("flashclaim.loadtest")
EXPECTED = {200, 201, 403, 409, 410, 429}  # answers that are the service working as designed
REPORT = "flashclaim_seen"

# What this process saw, per campaign; merged on the master at the end.
SEEN: dict[str, ClientFacts] = {}
STATE: dict[str, Any] = {"plan": None}
_user_numbers = itertools.count()
_tags: dict[int, str] = {}


def process_tag() -> str:
    """Unique per process (`--processes` forks after import: no module constant)."""
    pid = os.getpid()
    if pid not in _tags:
        _tags[pid] = secrets.token_hex(3)
    return _tags[pid]


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--stock", type=int, default=100, help="stock of each campaign")
    parser.add_argument("--campaigns", type=int, default=3, help="campaigns of the many scenario")
    parser.add_argument("--per-user-limit", type=int, default=2,
                       help="per_user_limit of the many-campaigns scenario")
    parser.add_argument("--run-id", default="",
                        help="prefix of this run's campaigns (default: a new one)")
    parser.add_argument("--admin-token", default="", is_secret=True,
                       env_var="FLASHCLAIM_ADMIN_TOKEN", help="the service's admin token")
    parser.add_argument("--start-delay", type=float, default=5.0,
                       help="seconds from test start to the flash crowd's common instant")
    parser.add_argument("--reconcile-command", default="",
                        help="run at the end (e.g. 'flashclaim reconcile --wait 30' where a "
                             "ledger consumer runs); a non-zero exit fails the verdict")
    parser.add_argument("--keep-campaigns", action="store_true", default=False,
                        help="leave the run's campaigns live after the verdict (by default "
                             "they are ended, so no test campaign stays on the coupon centre)")
    parser.add_argument("--fc-plan", default="", include_in_web_ui=False,
                       help="(internal) the campaigns, sent from master to workers")


def options_of(environment: Environment) -> Any:
    """The parsed options (with ours); always set when Locust runs a locustfile."""
    assert environment.parsed_options is not None and environment.host is not None
    return environment.parsed_options


@events.init.add_listener
def _check_admin_token(environment: Environment, **_: Any) -> None:
    """Stop at once, with one line, when the campaigns could not be created: not after
    thousands of users have failed."""
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or options is None or not environment.host:
        return
    problem = admin_token_problem(str(environment.host), options.admin_token)
    if problem is not None:
        print(f"flashclaim load test: {problem}", file=sys.stderr)
        sys.exit(2)  # SystemExit passes through Locust's event handlers


@events.test_start.add_listener
def _create_campaigns(environment: Environment, **_: Any) -> None:
    options = options_of(environment)
    if isinstance(environment.runner, WorkerRunner):  # workers read what the master sent
        STATE["plan"] = Plan.from_wire(orjson.loads(options.fc_plan))
        return
    run_id = options.run_id or time.strftime("%m%d%H%M%S") + secrets.token_hex(2)
    plan = create_all(str(environment.host), options.admin_token, run_id, options.stock,
                      options.campaigns, options.per_user_limit, options.start_delay)
    options.fc_plan = orjson.dumps(plan.to_wire()).decode()  # travels with the spawn message
    STATE["plan"] = plan
    log.info("run %s: campaigns %s", run_id, ", ".join(plan.all()))


@events.init.add_listener
def _wire_reports(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        def receive(msg: Any, **__: Any) -> None:
            for campaign_id, facts in msg.data.items():
                SEEN.setdefault(campaign_id, ClientFacts()).merge(ClientFacts.from_wire(facts))
        environment.runner.register_message(REPORT, receive)


@events.test_stop.add_listener
def _report_to_master(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message(REPORT, {c: f.to_wire() for c, f in SEEN.items()})
        SEEN.clear()


@events.quitting.add_listener
def _verdict(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or STATE["plan"] is None:
        return
    plan: Plan = STATE["plan"]
    gevent.sleep(1)  # the last worker reports are in flight
    options = options_of(environment)
    rows, breaches = [], []
    for campaign_id in plan.all():
        client = SEEN.get(campaign_id, ClientFacts())
        server = server_facts(str(environment.host), options.admin_token,
                              campaign_id, nobody_eligible=campaign_id == plan.vip)
        rows.append((campaign_id, client, server))
        breaches += judge(campaign_id, client, server)
    runner = environment.runner
    if runner is not None and (runner.cpu_warning_emitted or runner.worker_cpu_warning_emitted):
        print("WARNING: the load generator was CPU-bound (above 90%): the service was not the "
              "limit; run more worker processes (--processes) or machines")
    command = options.reconcile_command
    if command:
        result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300)
        print(result.stdout + result.stderr)
        if result.returncode != 0:
            breaches.append(Breach("ledger", f"{command!r} exited {result.returncode}"))
    print(format_verdict(rows, breaches))
    if not options.keep_campaigns:
        left = end_all(str(environment.host), options.admin_token, plan.all())
        if left:
            print(f"WARNING: could not end {', '.join(left)}")
    if breaches:
        environment.process_exit_code = 1


def record_answer(response: Any, facts: ClientFacts) -> None:
    """What a client learns from one claim or redemption answer, and whether it was expected."""
    status = response.status_code
    body = orjson.loads(response.content or b"{}") if status in (201, 410) else {}
    if status == 201:
        facts.granted[body["claim_id"]] = body["user_id"]
    if status == 410 and body.get("error") == "sold_out":  # (a used code is 410 too)
        facts.sold_out_seen = True
    if status in EXPECTED:
        response.success()
    else:
        facts.server_errors += status >= 500 or status == 0
        response.failure(f"unexpected {status}: {(response.text or '')[:200]}")


class ClaimingUser(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        self.plan: Plan = STATE["plan"]
        self.user_id = f"lt-{process_tag()}-{next(_user_numbers)}"

    def tap(self, campaign_id: str, scenario: str, *, user: str | None = None,
            key: str | None = None, channel: str | None = None, tags: str | None = None) -> None:
        headers = {"X-User-Id": user or self.user_id}
        if key:
            headers["Idempotency-Key"] = key
        if tags:
            headers["X-User-Tags"] = tags
        body = orjson.dumps({"channel": channel}).decode() if channel else None
        if body:
            headers["Content-Type"] = "application/json"
        facts = SEEN.setdefault(campaign_id, ClientFacts())
        with self.client.post(f"/v1/campaigns/{campaign_id}/claims", data=body, headers=headers,
                              name=f"claim: {scenario}", catch_response=True) as response:
            record_answer(response, facts)


class FlashCrowd(ClaimingUser):
    """Spawn, wait for the common instant, then everyone taps at once (and again)."""

    weight = 10
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        super().on_start()
        gevent.sleep(max(0.0, self.plan.start_at - time.time()) + random.uniform(0, 0.02))

    @task
    def grab(self) -> None:
        self.tap(self.plan.flash, "flash crowd")


class DuplicateHammer(ClaimingUser):
    """The same users again and again, half the taps with an Idempotency-Key."""

    weight = 3
    wait_time = constant(0.2)

    @task
    def with_key(self) -> None:
        self.tap(self.plan.hammer, "duplicate hammer (key)", key=f"{self.user_id}-tap")

    @task
    def without_key(self) -> None:
        self.tap(self.plan.hammer, "duplicate hammer (no key)")


class Bots(ClaimingUser):
    """A few scripts far over the rate limit (5 taps a second)."""

    weight = 1
    wait_time = constant(0.01)

    @task
    def hammer(self) -> None:
        self.tap(self.plan.bots, "bots")


class ManyCampaigns(ClaimingUser):
    """Load spread over several campaigns, a pack among them, per_user_limit > 1."""

    weight = 4
    wait_time = between(0.1, 0.5)
    POOL = 40  # users per process, shared by these Locust users: each taps many times

    @task
    def any_campaign(self) -> None:
        user = f"lt-{process_tag()}-many-{random.randrange(self.POOL)}"
        self.tap(random.choice(self.plan.many), "many campaigns", user=user)


class NotEligible(ClaimingUser):
    """Wrong channel, or no VIP tag: always 403."""

    weight = 2
    wait_time = between(0.2, 0.6)

    @task
    def wrong_channel(self) -> None:
        self.tap(self.plan.vip, "not eligible (channel)", channel="web", tags="vip")

    @task
    def missing_segment(self) -> None:
        self.tap(self.plan.vip, "not eligible (segment)", channel="app", tags="new")


class OperatorGrants(ClaimingUser):
    """An operator pushing the flash campaign's coupons to accounts while the crowd taps:
    grants of 50 users (some of them crowd users) compete for the same stock and limits."""

    weight = 1
    wait_time = between(1, 2)

    @task
    def grant(self) -> None:
        options = options_of(self.environment)
        headers = {"Authorization": f"Bearer {options.admin_token}"}
        grant_id = f"lt-{process_tag()}-{next(_user_numbers)}"
        users = [f"lt-{process_tag()}-{random.randint(0, next(_user_numbers))}"
                 for _ in range(50)]
        url = f"/v1/admin/campaigns/{self.plan.flash}/grants"
        with self.client.post(url, json={"grant_id": grant_id, "users": users}, headers=headers,
                              name="grant: submit", catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"unexpected {response.status_code}")
                return
        facts = SEEN.setdefault(self.plan.flash, ClientFacts())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = self.client.get(f"{url}/{grant_id}", headers=headers,
                                   name="grant: progress").json()
            if body["state"] == "done":
                for u in body["users"]:
                    if u["outcome"] == "granted":
                        facts.granted[u["claim_id"]] = u["user_id"]
                return
            gevent.sleep(0.1)
        facts.server_errors += 1  # a grant that never finished


class CodeRedeemers(ClaimingUser):
    """Users typing single-use codes of the flash campaign; several race for each code."""

    weight = 1
    wait_time = between(0.2, 0.5)

    @task
    def redeem(self) -> None:
        code = random.choice(self.plan.codes)
        facts = SEEN.setdefault(self.plan.flash, ClientFacts())
        with self.client.post("/v1/redemptions", json={"code": code},
                              headers={"X-User-Id": self.user_id},
                              name="redeem a code", catch_response=True) as response:
            record_answer(response, facts)
