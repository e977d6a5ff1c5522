"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://oms.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field of a request that is wrong, and why; ``code`` is the domain's reason, when the
    refusal has one a client may act on (``RESERVED_ACCOUNT_ID``)."""

    field: str
    message: str
    code: str | None = None

    def body(self) -> dict[str, str]:
        """The entry of the problem's ``errors``."""
        entry = {"field": self.field, "message": self.message}
        if self.code is not None:
            entry["code"] = self.code
        return entry


@dataclass(slots=True)
class Problem(Exception):
    """An HTTP error answer; ``code`` is the stable machine-readable part of ``type``."""

    status: int
    code: str
    title: str
    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        """The problem document."""
        document: dict[str, object] = {
            "type": PROBLEM_TYPE_BASE + self.code.lower().replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            "code": self.code,
        }
        if self.errors:
            document["errors"] = [e.body() for e in self.errors]
        return document

    def response(self) -> web.Response:
        """The aiohttp answer carrying this problem."""
        return web.Response(
            body=orjson.dumps(self.body()), status=self.status, content_type=PROBLEM_CONTENT_TYPE
        )


def malformed_json(detail: str) -> Problem:
    """400: the body is not JSON at all."""
    return Problem(400, "MALFORMED_JSON", "Malformed JSON", detail)


def invalid_body(errors: list[FieldError]) -> Problem:
    """422: JSON, but not a valid request; one entry per wrong field."""
    return Problem(422, "VALIDATION_FAILED", "Request body is not valid", errors=errors)


def not_found(what: str) -> Problem:
    """404 with what was looked for."""
    return Problem(404, "NOT_FOUND", "Not found", f"{what} not found")


def conflict(code: str, detail: str) -> Problem:
    """409: the request is valid but the resource's state refuses it."""
    return Problem(409, code, "Conflict", detail)


def invalid_query(errors: list[FieldError]) -> Problem:
    """422: a query parameter (or header) is not valid; one entry per wrong one."""
    return Problem(422, "INVALID_PARAMETERS", "Request parameters are not valid", errors=errors)


def forbidden(detail: str) -> Problem:
    """403: the caller may not act for that account."""
    return Problem(403, "FORBIDDEN", "Forbidden", detail)


def internal_error() -> Problem:
    """500: a bug; the detail says nothing about the inside."""
    return Problem(500, "INTERNAL_ERROR", "Internal server error", "unexpected error")


class DependencyUnavailable(Problem):
    """503: Redis, Kafka, MongoDB or the engine did not answer in time; try again later.

    On ``POST /api/orders`` the outcome is unknown (the command may be on its way): a retry
    with the same ``Idempotency-Key`` or ``client_order_id`` names the same order, so it finds
    or replays that one and never makes a second. ``dependency`` says which one failed.
    """

    __slots__ = ("dependency", "retry_after_s")

    def __init__(self, dependency: str, retry_after_s: int, detail: str) -> None:
        """The 503 for ``dependency`` (an ``oms.api.outages.Dependency``)."""
        Problem.__init__(self, 503, "DEPENDENCY_UNAVAILABLE", "Service unavailable", detail)
        self.dependency = dependency
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        """The problem document, with the ``dependency`` that failed."""
        return {**Problem.body(self), "dependency": self.dependency}

    def response(self) -> web.Response:
        """The answer, with ``Retry-After`` (seconds)."""
        response = Problem.response(self)
        response.headers["Retry-After"] = str(self.retry_after_s)
        return response


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn ``Problem`` and aiohttp's own HTTP errors into problem+json answers."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPRequestEntityTooLarge as exc:
        return Problem(413, "BODY_TOO_LARGE", "Request body too large", exc.text or "").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.upper().replace(" ", "_")
        response = Problem(exc.status, code, exc.reason, exc.text or exc.reason).response()
        if "Allow" in exc.headers:  # a 405 must say which methods the resource takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
