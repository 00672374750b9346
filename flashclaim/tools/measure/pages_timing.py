"""How soon each page is interactive on the embedded default: Navigation Timing in
Debian's chromium, six loads of each page against `flashclaim serve`. Prints the figures
docs/pages.md gives:

    python -m flashclaim.tools.measure.pages_timing
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from flashclaim.tools.children import serving

LOADS = 6
# When the document was parsed, and when its deferred script had run (handlers attached).
TIMING = ("() => { const n = performance.getEntriesByType('navigation')[0];"
          " return [n.domInteractive, n.domContentLoadedEventEnd]; }")


def main() -> None:
    chromium = shutil.which("chromium") or "chromium"
    with tempfile.TemporaryDirectory() as d, \
            serving(Path(d) / "data", "--admin-token", "t") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for path in ("/", "/admin"):
            parsed, ready = [], []
            for _ in range(LOADS):
                page = browser.new_page()
                page.goto(base + path, wait_until="load")
                interactive, loaded = page.evaluate(TIMING)
                parsed.append(round(interactive))
                ready.append(round(loaded))
                page.close()
            print(f"{path:7} parsed (domInteractive) ms {parsed}; scripts run and handlers "
                  f"attached (DOMContentLoaded end) ms {ready}; worst {max(ready)} ms")
        browser.close()


if __name__ == "__main__":
    main()
