"""How long the coupon centre's proof-of-work worker (web/pages/pow.js) takes in Debian's
chromium: it solves ten challenges at each difficulty and prints the hash rate and the
mean and worst times. docs/fairness.md gives the figures and what they mean on a phone:

    python -m flashclaim.tools.measure.pow_timing
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from flashclaim.tools.children import serving

SOLVES = 10
DIFFICULTIES = (12, 14, 15, 16)
# Run the page's own worker file on a random token, as the centre does; [ms, hashes].
SOLVE = """async ([token, bits]) => {
  const worker = new Worker("/static/pow.js");
  const result = await new Promise((resolve) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.postMessage({ token, bits });
  });
  worker.terminate();
  return [result.ms, result.hashes];
}"""


def main() -> None:
    chromium = shutil.which("chromium") or "chromium"
    with tempfile.TemporaryDirectory() as d, \
            serving(Path(d) / "data", "--admin-token", "t") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(base + "/", wait_until="load")
        for bits in DIFFICULTIES:
            times, hashes = [], []
            for _ in range(SOLVES):
                ms, n = page.evaluate(SOLVE, [secrets.token_hex(40), bits])
                times.append(ms)
                hashes.append(n)
            rate = sum(hashes) / (sum(times) / 1000)
            print(f"{bits} bits: {rate:,.0f} hashes/s; mean {statistics.mean(times):,.0f} ms, "
                  f"worst {max(times):,.0f} ms over {SOLVES} solves "
                  f"(expected {2 ** bits:,} hashes each)")
        browser.close()


if __name__ == "__main__":
    main()
