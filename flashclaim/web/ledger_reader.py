"""The service's reads of the SQL ledger (wallets, reports), off the event loop.

The database driver blocks, so every query runs on one dedicated thread: the loop keeps
serving claims meanwhile, and one connection is only ever used by the thread that made it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from flashclaim.errors import unavailable
from flashclaim.ledger.db import Ledger, LedgerUnavailable, open_ledger
from flashclaim.settings import Settings

T = TypeVar("T")


class LedgerReader:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-reader")
        self._ledger: Ledger | None = None

    def _open(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_ledger(self._settings.ledger_dsn, self._settings.data_dir)
            self._ledger.migrate()  # a ledger no consumer has written yet is empty, not an error
        return self._ledger

    async def read(self, query: Callable[[Ledger], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, lambda: query(self._open()))
        except LedgerUnavailable:
            raise unavailable("The ledger database is unavailable; try again shortly.") from None

    def close(self) -> None:
        def shut() -> None:
            if self._ledger is not None:
                self._ledger.close()
        self._pool.submit(shut).result()
        self._pool.shutdown()
