"""The operator's web page, served by the control plane on the API's own origin.

`add_web(app)` adds `GET /` (the page) and `GET /ui/<file>` (its ES modules, style sheet and
icon). The files ship in the package (`counterpoint.services/web/`) and are read through
importlib.resources, so an installed wheel serves them as a checkout does. They hold no data, so
they need no token: the page asks for one and sends it as a bearer token on every API call. The
routes are left out of the OpenAPI document (they are not part of the API).

Every answer carries a strict Content-Security-Policy (`default-src 'self'`, no inline script or
style, no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
`Cache-Control: no-cache` with an ETag, so a browser revalidates and an upgraded server is seen
at once. The page itself is described in docs/operations.md ("The operator's page").
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

PACKAGE = "counterpoint.services"
FOLDER = "web"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[a-z]+$")
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""No inline script or style anywhere: the page is ES modules and one style sheet."""
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def web_files() -> Traversable:
    """The folder of the page's files inside the installed package."""
    return resources.files(PACKAGE).joinpath(FOLDER)


def asset_names() -> list[str]:
    """The files `/ui/<name>` serves: those of the web folder with a known type."""
    folder = web_files()
    return sorted(
        f.name
        for f in folder.iterdir()
        if f.is_file() and ASSET_NAME.match(f.name) and _suffix(f.name) in CONTENT_TYPES
    )


def _suffix(name: str) -> str:
    return name[name.rfind(".") :]


def _serve(name: str, request: Request) -> Response:
    data = web_files().joinpath(name).read_bytes()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {**SECURITY_HEADERS, "ETag": etag}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=CONTENT_TYPES[_suffix(name)], headers=headers)


def add_web(app: FastAPI) -> None:
    """Serve the operator's page at `/` and its assets under `/ui/` (no auth, not in the schema)."""
    names = set(asset_names())
    if "index.html" not in names:
        raise RuntimeError(f"{web_files()}: the operator page's index.html is missing from the package")

    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        return _serve("index.html", request)

    @app.get("/ui/{name}", include_in_schema=False)
    def asset(name: str, request: Request) -> Response:
        if name not in names:  # only the package's own files: no paths, no guessing
            raise HTTPException(404, f"no file {name!r} in the operator page; it has {', '.join(sorted(names))}")
        return _serve(name, request)
