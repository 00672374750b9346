"""The README's walk-through, pasted into a shell in one go, gives the answers its comments
promise: a real `serve` and `ledger` on a data directory in a temp dir, the README's own
shell blocks run by bash, every curl's status compared with the status its comment names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from flashclaim.runtime.embedded import free_port
from flashclaim.tools import children

ROOT = Path(__file__).resolve().parents[2]
STATUS_COMMENT = re.compile(r"#\s*([2-5][0-9]{2})\b")
# Every curl prints its status on stderr, in order, after whatever the README does with
# its body (curl's %{stderr} switches -w's output there).
CURL_SHIM = "curl() { command curl -w '%{stderr}HTTP %{http_code}\\n' \"$@\"; }\n"


def walkthrough() -> str:
    """The shell blocks of the README's walk-through section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## A walk-through with curl", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.S))


def expected_statuses(script: str) -> dict[int, int]:
    """curl number (0-based, in the order they run) -> the status its comment names."""
    expected: dict[int, int] = {}
    seen = 0
    for line in script.splitlines():
        code, _, comment = line.partition("#")
        seen += len(re.findall(r"\bcurl\b", code))
        found = STATUS_COMMENT.search("#" + comment) if comment else None
        if found and seen:
            expected[seen - 1] = int(found.group(1))
    return expected


def test_the_walkthrough_pasted_in_one_go_answers_as_its_comments_say(tmp_path: Path) -> None:
    script = walkthrough()
    expected = expected_statuses(script)
    assert len(expected) >= 15, expected
    port = free_port()
    script = script.replace("API=http://127.0.0.1:8000", f"API=http://127.0.0.1:{port}")
    env = children.clean_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                                  f"{os.environ['PATH']}")
    data = tmp_path / ".flashclaim"
    serve = children.start(["serve", "--port", str(port), "--data-dir", str(data)], env,
                           tmp_path / "serve.log")
    ledger = None
    try:
        children.wait_ready(f"http://127.0.0.1:{port}", serve)
        ledger = children.start(["ledger", "--data-dir", str(data)], env, tmp_path / "ledger.log")
        run = subprocess.run(["bash", "-c", CURL_SHIM + script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    finally:
        for proc in (ledger, serve):
            if proc is not None:
                children.stop(proc)
    statuses = [int(s) for s in re.findall(r"^HTTP ([0-9]{3})$", run.stderr, re.M)]
    got = {i: statuses[i] for i in expected if i < len(statuses)}
    assert got == expected, (got, expected, run.stdout[-3000:], run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr
    report = run.stdout  # `flashclaim report double11`, as its comment says
    for shown in ("issued 102", "claims 5", "coupons 10", "used 1 (10.0%)",
                  "discount cost 20.00 CNY"):
        assert shown in report, (shown, report[-2000:])
    assert "unused coupons held by" in report  # `flashclaim expiring`
    assert not list(tmp_path.glob("*codes.csv"))  # no live codes in the working tree
