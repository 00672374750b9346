"""The two pages shipped with the service: the coupon centre (GET /) and the operator
dashboard (GET /admin), plain HTML, CSS and JavaScript from flashclaim/web/pages.

They add no write path: every action is a call to the JSON API, with the same identity
and admin token as any client. Served with a Content-Security-Policy that allows only
this origin's scripts, styles and API (no inline script, no third party), and never
cached where admin data could be (the dashboard and the admin API are `no-store`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flashclaim.errors import ApiError

_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
          "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@cache
def _files() -> dict[str, bytes]:
    """Every page file, read once (a fixed set: nothing a client names is ever looked up
    beyond it)."""
    folder = resources.files("flashclaim.web") / "pages"
    return {f.name: f.read_bytes() for f in folder.iterdir()
            if f.is_file() and f.name.rsplit(".", 1)[-1] in _TYPES}


def _serve(name: str, cache_control: str) -> Response:
    body = _files().get(name)
    if body is None:
        raise ApiError(404, "not_found", "No such file.")
    headers = {**SECURITY_HEADERS, "cache-control": cache_control}
    return Response(body, headers=headers, media_type=_TYPES[name.rsplit(".", 1)[-1]])


async def centre(request: Request) -> Response:
    return _serve("centre.html", "no-cache")


async def dashboard(request: Request) -> Response:
    return _serve("admin.html", "no-store")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name.endswith(".html"):  # pages have their own routes (and headers)
        raise ApiError(404, "not_found", "No such file.")
    return _serve(name, "no-cache")


_static = Route("/static/{name}", static, methods=["GET"])
_centre = Route("/", centre, methods=["GET"])
_dashboard = Route("/admin", dashboard, methods=["GET"])
public_routes = [_centre, _static]  # the public listener
admin_routes = [_dashboard, _static]  # the admin listener
all_routes = [_centre, _dashboard, _static]  # one listener for both
