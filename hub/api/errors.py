"""How the API renders errors: always ``{"error": <code>, "detail": <sentence>, ...extra}``.

    HubError (hub.errors)             its own status and code
    ├── MalformedRequest (422)        the payload is not what the route takes (bad JSON, a
    │                                 missing form field); ``problems`` says where
    └── UploadTooLarge (413)          the extract is over ``HUB_MAX_UPLOAD_BYTES``
    AgreementInvalid (contracts)      422 ``agreement_invalid``: every lint problem, with line
    PublisherError (publishers)       400 ``release_refused``: the engine cannot answer as asked
    HTTPException (starlette)         its status; the code is the status phrase in snake case
    anything else                     500 ``internal_error``; the traceback goes to the log only

No handler echoes a value the caller sent: validation problems name the field, not its input.
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts.loader import AgreementInvalid
from hub.errors import HubError, Unauthenticated
from publishers.errors import PublisherError

log = logging.getLogger(__name__)


class MalformedRequest(HubError):
    status_code = 422
    code = "malformed_request"


class UploadTooLarge(HubError):
    status_code = 413
    code = "upload_too_large"


def _body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def _where(loc: tuple[int | str, ...] | list[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def _hub_error(_: Request, exc: HubError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return JSONResponse(status_code=exc.status_code, content=exc.to_dict(), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": _where(e.get("loc", ())), "message": e["msg"]} for e in exc.errors()]
        where = ", ".join(p["where"] for p in problems)
        detail = f"the request is malformed ({where}); see the OpenAPI docs at /docs"
        return JSONResponse(
            status_code=422, content=_body(MalformedRequest.code, detail, problems=problems)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if exc.detail != phrase else f"{phrase}: {request.url.path}"
        return JSONResponse(
            status_code=exc.status_code,
            content=_body(phrase.lower().replace(" ", "_").replace("-", "_"), str(detail)),
            headers=exc.headers,
        )

    @app.exception_handler(AgreementInvalid)
    async def _invalid_agreement(_: Request, exc: AgreementInvalid) -> JSONResponse:
        problems = [p.as_dict() for p in exc.problems]
        detail = f"the agreement has {len(problems)} problem(s); fix each and submit it again"
        return JSONResponse(
            status_code=422, content=_body("agreement_invalid", detail, problems=problems)
        )

    @app.exception_handler(PublisherError)
    async def _refused(_: Request, exc: PublisherError) -> JSONResponse:
        return JSONResponse(status_code=400, content=_body("release_refused", str(exc)))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # The type and the stack, not the message: an error's text can quote a value from an
        # uploaded file (a failed conversion, say), and logs are not a place for identifiers.
        log.error(
            "unhandled %s on %s %s\n%s",
            type(exc).__name__,
            request.method,
            request.url.path,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        detail = "the hub failed to answer; the administrator can find the cause in the log"
        return JSONResponse(status_code=500, content=_body("internal_error", detail))
