"""Identity: the header mode, and the jwt mode with pinned algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.settings import Settings, SettingsError

from helpers import ADMIN_TOKEN, NAMESPACE, app_client, create_campaign

SECRET = "s" * 40
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_PUBLIC = EC_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256",
          **overrides: Any) -> str:
    body = {"sub": "alice", "exp": int(time.time()) + 60, "aud": "coupons", "iss": "auth",
            **(claims or {})}
    for name, value in overrides.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return jwt.encode(body, key, algorithm=algorithm)


def forged(header: dict[str, str], key: bytes | None) -> str:
    """A token built by hand, as an attacker would: PyJWT refuses to make these."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    body = {"sub": "bob", "exp": int(time.time()) + 60, "aud": "coupons", "iss": "auth"}
    signing_input = part(json.dumps(header).encode()) + "." + part(json.dumps(body).encode())
    signature = b"" if key is None else hmac.new(key, signing_input.encode(),
                                                 hashlib.sha256).digest()
    return signing_input + "." + part(signature)


def jwt_settings(server: EmbeddedServer, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        redis_url=server.url, admin_token=ADMIN_TOKEN, namespace=NAMESPACE, auth_mode="jwt",
        jwt_algorithms=("HS256",), jwt_key=SECRET, jwt_issuer="auth", jwt_audience="coupons")
    base.update(kw)
    settings = Settings(**base)
    settings.validate()
    return settings


@pytest.fixture
async def jwt_client(server: EmbeddedServer) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(jwt_settings(server)) as c:
        yield c


async def claim_with(client: httpx.AsyncClient, campaign: str, bearer: str,
                     **headers: str) -> httpx.Response:
    return await client.post(f"/v1/campaigns/{campaign}/claims",
                             headers={"Authorization": f"Bearer {bearer}", **headers})


async def test_a_valid_token_claims_as_its_subject(jwt_client: httpx.AsyncClient) -> None:
    c = await create_campaign(jwt_client, segments=["vip"])
    response = await claim_with(jwt_client, c["id"], token({"tags": ["vip"]}),
                                **{"X-User-Id": "mallory"})  # ignored in jwt mode
    assert response.status_code == 201, response.text
    assert response.json()["user_id"] == "alice"


@pytest.mark.parametrize(("name", "bearer"), [
    ("expired", token(exp=int(time.time()) - 10)),
    ("no exp", token(exp=None)),
    ("alg none", forged({"alg": "none", "typ": "JWT"}, None)),
    ("wrong algorithm", token(key=EC_KEY, algorithm="ES256")),
    ("bad signature", token(key="x" * 40)),
    ("wrong audience", token(aud="someone-else")),
    ("wrong issuer", token(iss="elsewhere")),
    ("no sub", token(sub=None)),
    ("sub with a brace", token(sub="{alice}")),
    ("tags not a list", token({"tags": "vip"})),
    ("garbage", "not.a.token"),
])
async def test_bad_tokens_are_401(jwt_client: httpx.AsyncClient, name: str, bearer: str) -> None:
    c = await create_campaign(jwt_client)
    response = await claim_with(jwt_client, c["id"], bearer)
    assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    stats = (await jwt_client.get(f"/v1/admin/campaigns/{c['id']}",
                                  headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
    assert stats["stats"]["granted"] == 0


async def test_no_bearer_is_401(jwt_client: httpx.AsyncClient) -> None:
    c = await create_campaign(jwt_client)
    response = await jwt_client.post(f"/v1/campaigns/{c['id']}/claims",
                                     headers={"X-User-Id": "alice"})
    assert response.status_code == 401


async def test_public_key_algorithms(server: EmbeddedServer) -> None:
    settings = jwt_settings(server, jwt_algorithms=("ES256",), jwt_key=EC_PUBLIC)
    async with app_client(settings) as client:
        c = await create_campaign(client)
        good = await claim_with(client, c["id"], token(key=EC_KEY, algorithm="ES256"))
        assert good.status_code == 201
        # The classic confusion: the public key used as an HMAC secret.
        confused = forged({"alg": "HS256", "typ": "JWT"}, EC_PUBLIC.encode())
        assert (await claim_with(client, c["id"], confused)).status_code == 401


@pytest.mark.parametrize(("kw", "message"), [
    ({"jwt_algorithms": ("none",)}, "must name"),
    ({"jwt_algorithms": ("HS256", "RS256")}, "must not mix"),
    ({"jwt_key": None}, "needs FLASHCLAIM_JWT_KEY"),
    ({"jwt_key": "short"}, "at least 32"),
])
def test_unsafe_configurations_are_refused(server: EmbeddedServer, kw: dict[str, Any],
                                           message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        jwt_settings(server, **kw)


async def test_a_sub_with_a_trailing_newline_is_401(jwt_client: httpx.AsyncClient) -> None:
    c = await create_campaign(jwt_client)
    response = await claim_with(jwt_client, c["id"], token(sub="x\n"))
    assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    assert (await claim_with(jwt_client, c["id"], token(sub="x"))).status_code == 201


async def test_an_allowed_alg_that_does_not_fit_the_key_is_401(server: EmbeddedServer) -> None:
    """RS256 is allowed, but the key is an EC key: PyJWT raises InvalidKeyError (once a 500)."""
    settings = jwt_settings(server, jwt_algorithms=("RS256", "ES256"), jwt_key=EC_PUBLIC)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with app_client(settings) as client:
        c = await create_campaign(client)
        response = await claim_with(client, c["id"], token(key=rsa_key, algorithm="RS256"))
        assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
        fits = await claim_with(client, c["id"], token(key=EC_KEY, algorithm="ES256"))
        assert fits.status_code == 201
