"""Shared HTTP plumbing: JSON in and out, and errors that are always JSON.

Every failure, including aiohttp's own 404/405/413 and bugs, is answered as
``{"success": false, "error", "detail", "code"}`` with a fitting status; a bare
HTML error page never leaves this process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from ..core.outcomes import ApiError
from ..service import Coordinator

log = structlog.get_logger("coordinator.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status=status,
                        content_type="application/json")


def error_response(err: ApiError) -> web.Response:
    return json_response(err.body(), err.status)


HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "body_too_large", 415: "unsupported_media_type", 431: "headers_too_large", 501: "not_implemented",
    505: "http_version_not_supported",
}


METRICS = web.AppKey("metrics", object)
COORD = web.AppKey("coordinator", Coordinator)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await _handle(request, handler)
    metrics = request.app.get(METRICS)
    if metrics is not None:
        route = request.match_info.route.resource
        endpoint = route.canonical if route is not None else "unmatched"
        metrics.request(endpoint, resp.status)  # type: ignore[attr-defined]
    return resp


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status
        if status == 404:
            msg = f"no such endpoint: {request.method} {request.path}"
        elif status == 405:
            allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
            msg = f"method {request.method} is not allowed on {request.path}"
            if allowed:
                msg += f" (allowed: {allowed})"
        elif status == 413:
            msg = "request body too large"
        else:
            msg = exc.reason or "request failed"
        return error_response(ApiError(status, HTTP_CODES.get(status, "http_error"), msg))
    except Exception:  # a bug: say so as JSON, keep serving
        return error_response(internal_error(request.method, request.path))


def internal_error(method: str, path: str) -> ApiError:
    """A bug while answering ``method path``: logged with its traceback (call it from the
    ``except``), answered as a JSON 500 that says no more."""
    log.exception("unhandled_error", path=path, method=method)
    return ApiError(500, "internal_error", "internal error; the coordinator logged the details")


_LONG_NUMBER = re.compile(rb"\d{16,}")  # orjson turns integers beyond 64 bits into floats


def _exact_numbers(raw: bytes) -> Any:
    """Re-parse keeping integers exact; range checks happen where the value is used."""
    return json.loads(raw)


INT_RANGE = (-(2**63), 2**64 - 1)


async def read_json(request: web.Request, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/415 ApiError."""
    return parse_json(await request.read(), request.content_type, required)


def parse_json(raw: bytes, ctype: str, required: bool = True) -> dict[str, Any]:
    """``raw`` (sent as media type ``ctype``) as a JSON object, or a 400/415 ApiError."""
    if not raw.strip():
        if required:
            raise ApiError(400, "empty_body", "the request body must be a JSON object")
        return {}
    if ctype not in ("application/json", "application/octet-stream", "text/plain", "") and not ctype.endswith("+json"):
        if ctype != "application/x-www-form-urlencoded":  # curl -d default; accept JSON sent that way
            raise ApiError(415, "unsupported_media_type", f"send JSON (Content-Type: application/json), not {ctype}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
    if _LONG_NUMBER.search(raw):
        data = _exact_numbers(raw)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return data


def field(data: dict[str, Any], name: str, kinds: type | tuple[type, ...], required: bool = False,
          default: Any = None) -> Any:
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "missing_field", f"field '{name}' is required")
        return default
    value = data[name]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ApiError(400, "bad_field", f"field '{name}' has the wrong type (bool)")
    if not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        raise ApiError(400, "bad_field", f"field '{name}' must be {names}, got {type(value).__name__}")
    if isinstance(value, int) and not isinstance(value, bool) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise ApiError(400, "bad_field", f"field '{name}' is outside the 64-bit integer range")
    return value


def health_handler(service: str) -> Handler:
    async def health(_request: web.Request) -> web.Response:
        return json_response({"status": "healthy", "service": service})

    return health


def make_app(max_body: int) -> web.Application:
    return web.Application(middlewares=[errors_middleware], client_max_size=max_body)
