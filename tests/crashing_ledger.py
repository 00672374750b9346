"""`flashclaim ledger` whose ledger dies like kill -9 right after its first commit, before
the consumer acknowledges the batch: the one moment a consumer can die between the two.

A test program (tests/ledger/test_ledger.py runs it as `python crashing_ledger.py ledger ...`),
so that no fault-injection hook lives in the production consumer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flashclaim import cli
from flashclaim.ledger import db as ledger_db
from flashclaim.stream import ClaimRecord

_open_ledger = ledger_db.open_ledger


def _open_crashing(dsn: str | None, data_dir: Path, *, must_exist: bool = False
                   ) -> ledger_db.Ledger:
    ledger = _open_ledger(dsn, data_dir, must_exist=must_exist)
    write = ledger.write

    def write_then_die(records: list[ClaimRecord]) -> int:
        write(records)  # committed
        os._exit(137)  # ... and gone before the XACK

    ledger.write = write_then_die  # type: ignore[method-assign]
    return ledger


if __name__ == "__main__":
    ledger_db.open_ledger = _open_crashing  # cli.ledger imports it when it runs
    sys.exit(cli.main(sys.argv[1:]))
