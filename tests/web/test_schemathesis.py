"""Schemathesis against a running `flashclaim serve`: generated requests, valid and not,
never get a 5xx, and every response conforms to /openapi.json. A fixed budget per route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from flashclaim.tools.children import serving
from flashclaim.web.openapi import openapi_document

schema = schemathesis.openapi.from_dict(openapi_document())
TOKEN = "fuzz-admin-token"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    with serving(data_dir, "--admin-token", TOKEN) as base:
        yield base


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_5xx_and_responses_match_the_schema(case: schemathesis.Case[Any], base_url: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"} if case.path.startswith("/v1/admin") else {}
    case.call_and_validate(
        base_url=base_url, headers=headers,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])
