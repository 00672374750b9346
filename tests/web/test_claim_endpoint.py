"""The claim endpoint remembers the channel of the bodies it has seen: bounded (bodies are
the clients' choice), never a refused body, and the same answer from memory as decoded."""

from __future__ import annotations

from flashclaim.settings import Settings

from helpers import app_client, claim, create_campaign


async def test_known_bodies_are_remembered_within_a_bound(settings: Settings) -> None:
    app = app_client(settings)
    async with app as client:
        c = await create_campaign(client, stock=1000, channels=["app"], per_user_limit=1)
        endpoint = app.app.endpoint
        assert endpoint is not None
        # decoded the first time, remembered the second: the same answer both times
        for _ in range(2):
            assert (await claim(client, c["id"], "w1", channel="web")).status_code == 403
        assert (await claim(client, c["id"], "a1", channel="app")).status_code == 201
        # a refused body is not remembered
        bad = await client.post(f"/v1/campaigns/{c['id']}/claims", content=b'{"chanel":"x"}',
                                headers={"X-User-Id": "b1", "Content-Type": "application/json"})
        assert bad.status_code == 400
        assert b'{"chanel":"x"}' not in endpoint._channels
        # bodies beyond the bound are decoded each time, never kept
        for i in range(300):
            await claim(client, c["id"], f"u{i}", channel=f"c{i}")
        assert len(endpoint._channels) == 256
