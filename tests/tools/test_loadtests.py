"""The Locust scenarios: a short real run gives a clean verdict; the verdict catches breaches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flashclaim.checks.verdict import ClientFacts, ServerFacts, judge
from flashclaim.tools import children
from flashclaim.tools.children import serving

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


def clean() -> tuple[ClientFacts, ServerFacts]:
    """Stock 3, per-user limit 2: u1 twice, u2 once; clients saw all three and a sold out."""
    records = [("c1", "u1", 1), ("c2", "u2", 2), ("c3", "u1", 3)]
    client = ClientFacts(granted={c: u for c, u, _ in records}, sold_out_seen=True)
    server = ServerFacts(stock=3, granted=3, recorded=3, per_user_limit=2, records=records)
    return client, server


def test_a_clean_run_passes() -> None:
    assert judge("x", *clean()) == []


def _oversold(c: ClientFacts, s: ServerFacts) -> None:
    s.granted, s.recorded = 4, 4
    s.records.append(("c4", "u3", 4))


def _lost(c: ClientFacts, s: ServerFacts) -> None:
    c.granted["ghost"] = "u9"  # a 201 the stream does not hold


def _over_limit(c: ClientFacts, s: ServerFacts) -> None:
    s.records[1] = ("c2", "u1", 2)


def _duplicated(c: ClientFacts, s: ServerFacts) -> None:
    s.records[2] = ("c1", "u1", 3)


def _unrecorded(c: ClientFacts, s: ServerFacts) -> None:
    s.recorded = 2


def _undersold(c: ClientFacts, s: ServerFacts) -> None:
    s.stock = 5  # told "sold out" with 2 left


def _server_errors(c: ClientFacts, s: ServerFacts) -> None:
    c.server_errors = 3


def _ineligible(c: ClientFacts, s: ServerFacts) -> None:
    s.eligible_users_exist = False


def _code_twice(c: ClientFacts, s: ServerFacts) -> None:
    s.code_uses = {"a1b2c3d4e5": 2}  # a single-use code that granted twice


@pytest.mark.parametrize(("plant", "expected"), [
    (_oversold, "oversold"), (_lost, "lost"), (_over_limit, "above per_user_limit"),
    (_duplicated, "duplicated"), (_unrecorded, "stream: 2 records for 3 grants"),
    (_undersold, "undersold"), (_server_errors, "server errors"), (_ineligible, "not eligible"),
    (_code_twice, "codes redeemed more than 1 times"),
], ids=lambda p: getattr(p, "__name__", str(p)))
def test_each_planted_breach_fails_the_verdict(plant: object, expected: str) -> None:
    client, server = clean()
    plant(client, server)  # type: ignore[operator]
    breaches = judge("x", client, server)
    assert any(expected in b.what for b in breaches), breaches


def test_reports_survive_the_wire() -> None:
    client, _ = clean()
    merged = ClientFacts()
    merged.merge(ClientFacts.from_wire(client.to_wire()))
    merged.merge(ClientFacts(granted={"c9": "u9"}, server_errors=1))
    assert merged.granted == {**client.granted, "c9": "u9"}
    assert merged.sold_out_seen and merged.server_errors == 1


@pytest.mark.parametrize("backend", [
    "embedded", pytest.param("cluster", marks=pytest.mark.cluster)])
def test_headless_smoke_run_passes(tmp_path: Path, backend: str,
                                   request: pytest.FixtureRequest) -> None:
    """A short real run: service and ledger on the embedded server (or on the local cluster),
    a few hundred users, a clean verdict."""
    data_dir = tmp_path / "data"
    redis_url = request.getfixturevalue("cluster").url if backend == "cluster" else None
    env = children.clean_env(**({"FLASHCLAIM_REDIS_URL": redis_url} if redis_url else {}))
    with serving(data_dir, redis_url=redis_url) as base:
        ledger = subprocess.Popen(
            [sys.executable, "-m", "flashclaim", "ledger", "--data-dir", str(data_dir),
             "--block-ms", "200"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            reconcile = (f"{sys.executable} -m flashclaim reconcile --wait 30 "
                         f"--data-dir {data_dir}")
            result = subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(LOADTESTS / "locustfile.py"),
                 "--headless", "-u", "300", "-r", "150", "-t", "15s", "--host", base,
                 "--admin-token", (data_dir / "admin-token").read_text().strip(),
                 "--stock", "60", "--start-delay", "3", "--only-summary",
                 "--reconcile-command", reconcile],
                env=env, capture_output=True, text=True, timeout=180,
            )
            # the run's campaigns were ended: none is left on the public list
            left_open = httpx.get(base + "/v1/campaigns").json()["campaigns"]
        finally:
            ledger.terminate()
            ledger.wait(30)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "VERDICT: PASS" in output and "all consistent" in output
    assert "flash   60     60" in output  # the flash crowd sold out exactly
    assert left_open == [], [c["id"] for c in left_open]


@pytest.mark.parametrize(("token", "says"), [("", "no admin token"),
                                             ("wrong", "refused the admin token")])
def test_a_missing_or_wrong_admin_token_stops_at_once(tmp_path: Path, token: str,
                                                      says: str) -> None:
    with serving(tmp_path / "data") as base:
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOADTESTS / "locustfile.py"),
             "--headless", "-u", "50", "-r", "50", "-t", "20s", "--host", base,
             "--admin-token=" + token],
            env=children.clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    ours = [line for line in result.stderr.splitlines() if "flashclaim load test:" in line]
    assert len(ours) == 1 and says in ours[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Uncaught" not in result.stderr
