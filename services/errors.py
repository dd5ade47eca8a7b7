"""The control plane's error model: every 4xx and 5xx answers one JSON body, `ErrorBody`, with
`detail` (what to fix), `error` (a code) and, where it applies, `field`.

Here are the codes and the OpenAPI descriptions of each status (`error_responses`, which the
routes in app.py list), the one way to build an error answer (`error_response`), the handlers
that turn validation errors, HTTP errors and the schedule's and the backend's exceptions into such
answers (`install_error_handlers`), and `BodySizeLimit`, the middleware that refuses an oversized
body (413) before anything parses it. app.py holds the routes; nothing here knows one.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from counterpoint.services.backend import BackendUnavailable, RunNotFound
from counterpoint.services.schemas import ErrorBody
from counterpoint.trainer.curriculum.controller import ControllerStateError
from counterpoint.trainer.curriculum.stages import ScheduleConflict, ScheduleError, StaleVersion, UnknownName

log = logging.getLogger(__name__)


_ERRORS = {
    400: "Malformed request (e.g. a bad Content-Length).",
    401: "No bearer token, or an unknown one.",
    403: "The token's role may not do this (viewer writing).",
    404: "Unknown run, stage or domain.",
    409: "Stale base_version (the body has current_version), a finished run, or a finished stage.",
    413: "Request body over the size limit.",
    422: "Invalid value; `field` names it.",
    503: "The run's controller cannot be reached or its state cannot be read.",
}
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    503: "unavailable",
}


def error_responses(*codes: int) -> dict:
    """The OpenAPI `responses` of a route that can answer with these statuses."""
    return {c: {"model": ErrorBody, "description": _ERRORS[c]} for c in codes}


def error_response(
    status: int, detail: str, *, error: str | None = None, headers: dict | None = None, **extra
) -> JSONResponse:
    """The answer of an error: `error` defaults to the status's code; `extra` fills the other
    fields of ErrorBody (`field`, `errors`, `current_version`)."""
    body = ErrorBody(detail=detail, error=error or _CODES.get(status, "error"), **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413 before the app parses them: by the
    Content-Length header when there is one, else while reading the (chunked) body."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = error_response(413, f"the request body is over the {self.max_bytes}-byte limit")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await error_response(400, "Content-Length must be a number of bytes")(scope, receive, send)
            if int(length) > self.max_bytes:
                return await too_large(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await too_large(scope, receive, send)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


TAGGED = {"advance", "weighting"}
"""Stage fields that are unions on `type`: pydantic puts the member tried into the error path
(stages[0].advance.plateau.metric), which names no field a client sends; it is left out."""


def _field(loc) -> str:
    parts = [p for p in loc if p not in ("body", "path", "query", "header")] or list(loc[:1])
    parts = [p for i, p in enumerate(parts) if not (i and parts[i - 1] in TAGGED)]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e["loc"]), "message": e["msg"].removeprefix("Value error, ")} for e in err.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return error_response(422, f"{first['field']}: {first['message']}", field=first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(ScheduleError)
    async def schedule_error(request: Request, err: ScheduleError) -> JSONResponse:
        if isinstance(err, StaleVersion):
            return error_response(
                409, str(err), error="stale_version", field=err.field, current_version=err.current_version
            )
        status = 404 if isinstance(err, UnknownName) else 409 if isinstance(err, ScheduleConflict) else 422
        return error_response(status, str(err), field=err.field)

    @app.exception_handler(RunNotFound)
    async def run_not_found(request: Request, err: RunNotFound) -> JSONResponse:
        return error_response(404, f"{err}; GET /v1/runs lists the runs", field="run_id")

    @app.exception_handler(ControllerStateError)
    @app.exception_handler(BackendUnavailable)
    async def unavailable(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s: %s", request.method, request.url.path, err)
        return error_response(503, str(err))
