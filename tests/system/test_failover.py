"""The failover drill (tests/failover_drill.py) on a cluster of its own: without replica
acknowledgements a failover loses claims already answered 201; with them, none."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover_drill import run_drill

pytestmark = pytest.mark.cluster


async def test_without_replica_acks_a_failover_loses_acknowledged_claims(
    tmp_path: Path,
) -> None:
    """The drill can see a loss: the claims of the last 200 ms before the crash."""
    result = await run_drill(tmp_path, replica_acks=0)
    assert result.acknowledged > 0 and result.lost > 0, result


async def test_with_one_replica_ack_a_failover_loses_nothing(tmp_path: Path) -> None:
    result = await run_drill(tmp_path, replica_acks=1)
    assert result.acknowledged > 0 and result.lost == 0, result
    assert result.back_s < 30, result  # the shard takes claims again once a replica is back
