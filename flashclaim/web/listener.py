"""The HTTP listener: the app under uvicorn, with the project's HTTP limits.

`serve` runs it in its own process (with `--workers N`, uvicorn's workers); the
separate admin listener runs as `python -m flashclaim.web.listener HOST PORT`, its
settings (FLASHCLAIM_ROLE=admin among them) in the environment.
"""

from __future__ import annotations

import sys

import uvicorn

from flashclaim.settings import Settings
from flashclaim.web.http_server import GuardedHttpToolsProtocol


def run(host: str, port: int, workers: int, settings: Settings,
        app: str = "flashclaim.web.app:create_app", factory: bool = True) -> None:
    """`app` under uvicorn with the HTTP limits (the benchmarks' yardsticks run the same way)."""
    uvicorn.run(
        app, factory=factory, host=host, port=port, workers=workers,
        loop="uvloop", http=GuardedHttpToolsProtocol, timeout_keep_alive=settings.keepalive_s,
        # The client's address is the connection's peer, or the header FLASHCLAIM_CLIENT_IP_HEADER
        # names (web/claim_endpoint.client_ip): uvicorn's own rewrite from X-Forwarded-For
        # (for peers it trusts, 127.0.0.1 by default) would add a second, unconfigured rule,
        # and a middleware layer on every tap.
        proxy_headers=False,
        access_log=False, log_level="info",
    )


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), 1, Settings.from_env())
