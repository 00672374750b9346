"""The audit log's entries: who changed what, with what result, when.

Every write through the admin API (a request other than GET or HEAD, once its token was
found and its role checked) and every CLI command that writes appends one entry to one
stream (KeySpace.audit): the actor (a token's name, or `cli:<os user>`), its role, the
method and path, the campaign the path names, the request body with secrets masked, the
answer's status, the time. Reads are not logged.
"""

from __future__ import annotations

import getpass
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA_VERSION = "1"
MAX_BODY_BYTES = 8192  # a body kept longer is cut (and says so)
_SECRET_KEYS = re.compile(r"(?i).*(token|secret|password|nonce|code)s?")
_CAMPAIGN_PATH = re.compile(r"/v1/admin/campaigns/([A-Za-z0-9_-]{1,64})(?:/.*)?")
MASK = "***"


def masked(value: Any) -> Any:
    """The body with every value under a secret-looking key replaced (at any depth)."""
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and _SECRET_KEYS.fullmatch(k) else masked(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def campaign_of(path: str) -> str:
    match = _CAMPAIGN_PATH.fullmatch(path)
    return match[1] if match else ""


def body_text(raw: bytes) -> str:
    """What is kept of a request body: its JSON, masked, at most MAX_BODY_BYTES."""
    if not raw:
        return ""
    try:
        text = orjson.dumps(masked(orjson.loads(raw))).decode()
    except orjson.JSONDecodeError:
        return "(not JSON)"
    return text if len(text) <= MAX_BODY_BYTES else text[:MAX_BODY_BYTES] + "…(cut)"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: int  # epoch ms
    actor: str
    role: str
    method: str
    path: str
    campaign_id: str
    body: str
    status: int

    def fields(self) -> dict[str, str]:
        return {"v": SCHEMA_VERSION, "at": str(self.at), "actor": self.actor, "role": self.role,
                "method": self.method, "path": self.path, "campaign_id": self.campaign_id,
                "body": self.body, "status": str(self.status)}

    @classmethod
    def decode(cls, fields: dict[str, str]) -> AuditEntry:
        return cls(int(fields["at"]), fields["actor"], fields["role"], fields["method"],
                   fields["path"], fields["campaign_id"], fields["body"], int(fields["status"]))


def cli_entry(command: str, body: dict[str, Any], status: int, campaign_id: str = ""
              ) -> AuditEntry:
    """A CLI command's entry: the OS user runs it (there is no token)."""
    return AuditEntry(int(time.time() * 1000), f"cli:{getpass.getuser()}", "cli", "CLI",
                      command, campaign_id, orjson.dumps(masked(body)).decode(), status)
