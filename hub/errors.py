"""Errors a user of the hub can see.

    HubError (500)
    ├── NotFound (404)
    ├── NotAllowed (403)          the caller's role or agency may not do this
    ├── Unauthenticated (401)
    ├── AgreementRefused (409)    no active, in-date agreement covers the request
    ├── UploadRejected (422)      the file failed validation; carries the report
    ├── BudgetExhausted (409)     the privacy budget cannot pay for a release
    └── InvalidRequest (400)      a well-formed request the hub cannot act on

Each carries a sentence saying what was wrong and, where possible, what to do next. The API
renders every one as ``{"error": <code>, "detail": <sentence>, ...extra}``.
"""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class NotFound(HubError):
    status_code = 404
    code = "not_found"


class NotAllowed(HubError):
    status_code = 403
    code = "not_allowed"


class Unauthenticated(HubError):
    status_code = 401
    code = "unauthenticated"


class AgreementRefused(HubError):
    status_code = 409
    code = "agreement_refused"


class UploadRejected(HubError):
    status_code = 422
    code = "upload_rejected"


class BudgetExhausted(HubError):
    status_code = 409
    code = "budget_exhausted"


class InvalidRequest(HubError):
    status_code = 400
    code = "invalid_request"
