"""Who may do what through the admin API: named tokens with a role, and the role each
route needs (one table: web/guards.py enforces it, the tests walk it route by route).

- `viewer`: reads campaigns, reports, alerts (GET);
- `operator`: also creates and changes campaigns, stock, grants, codes, templates, rules,
  schedules, draws' exports;
- `admin`: everything, including tokens, the blocklist, webhooks, the alert rules and the
  cap groups (the settings; anyone reads the cap groups).
`checkout` and `events` are roles of their own scope: the checkout write-back and orders,
and POST /v1/events; no admin role reaches them, and they reach nothing else.
"""

from __future__ import annotations

import hashlib
import re

ADMIN_ROLES = ("viewer", "operator", "admin")  # each may do what the ones before it may
SCOPED_ROLES = ("checkout", "events")
ROLES = ADMIN_ROLES + SCOPED_ROLES
TOKEN_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
BOOTSTRAP = "bootstrap"  # the name the configured tokens act under

# Admin routes only an admin may use, whatever the method (path prefixes under /v1/admin).
_ADMIN_ONLY = ("/v1/admin/tokens", "/v1/admin/blocklist", "/v1/admin/webhooks",
               "/v1/admin/alert-rules")
# Admin routes anyone may read but only an admin may change (the settings campaigns name).
_ADMIN_WRITES = ("/v1/admin/cap-groups",)
# GET routes that are more than a read: they hand out what they export.
_OPERATOR_READS = (re.compile(r"/v1/admin/campaigns/[^/]+/codes\.csv"),)


def required_role(method: str, path: str) -> str:
    """The least role that may call this admin route."""
    if path.startswith(_ADMIN_ONLY):
        return "admin"
    if path.startswith(_ADMIN_WRITES) and method not in ("GET", "HEAD"):
        return "admin"
    if method in ("GET", "HEAD") and not any(rx.fullmatch(path) for rx in _OPERATOR_READS):
        return "viewer"
    return "operator"


def allows(role: str, required: str) -> bool:
    if required in SCOPED_ROLES or role in SCOPED_ROLES:
        return role == required
    return ADMIN_ROLES.index(role) >= ADMIN_ROLES.index(required)


def token_digest(token: str) -> str:
    """What is stored of a token (never the token): its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
