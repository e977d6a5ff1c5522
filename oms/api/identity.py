"""Who is calling, and what they may do: the one place the API answers that.

``auth_middleware`` resolves every ``/api/*`` and ``/ws/*`` request's credential once (an API
key or a JWT in ``Authorization: Bearer``, or a WebSocket ticket in ``?ticket=``) to a
``Caller``, and checks that the caller's role may take the route's action
(``ROUTE_ACTIONS``: every route names exactly one ``oms.domain.access.Action``). The routes then
ask the functions below whether the caller reaches the account they name.

Answers: 401 ``MISSING_CREDENTIAL`` / ``INVALID_CREDENTIAL`` (with ``WWW-Authenticate: Bearer``)
when there is no credential or it proves nobody; 403 ``ROLE_FORBIDS_ACTION`` for a known caller
whose role may not do this, ``ACCOUNT_NOT_PERMITTED`` for one outside its accounts; another
account's order is 404 (order ids do not leak). Open without a credential: ``/health``,
``/ready``, ``/api/openapi.json`` and ``/metrics`` (the pod's port, which in AWS only the ALB and
Prometheus reach, and the ALB answers 404 for ``/metrics``: see ``infra-cdktf``'s edge stack).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from oms import correlation
from oms.api.client_address import client_address
from oms.api.problems import FieldError, Problem, invalid_query
from oms.domain.access import Action, Reach, Role, may, reach
from oms.domain.accounts import IDENTIFIER


class AccessRefusal(StrEnum):
    """Why a request was refused before its route ran: the problem's ``code``."""

    MISSING_CREDENTIAL = "MISSING_CREDENTIAL"  # 401: no Authorization (or ticket) at all
    INVALID_CREDENTIAL = "INVALID_CREDENTIAL"  # 401: unknown, revoked, expired, badly signed
    ROLE_FORBIDS_ACTION = "ROLE_FORBIDS_ACTION"  # 403: the caller's role may not do this
    ACCOUNT_NOT_PERMITTED = "ACCOUNT_NOT_PERMITTED"  # 403: not one of the caller's accounts
    NO_ACCESS_RULE = "NO_ACCESS_RULE"  # 403: a route nobody gave an action (fails closed)
    # 401: a request claiming to come from another replica whose signature does not hold
    # (no internal token here, a wrong one, a changed request, an old one)
    UNTRUSTED_HOP = "UNTRUSTED_HOP"


@dataclass(frozen=True, slots=True)
class Caller:
    """The party behind a request: its role, its accounts, and what proved it.

    ``key_id`` names the API key it used (never the key), ``subject`` the JWT's ``sub``; one of
    them is set. ``client`` is the request's peer address (audit and rate limits use it).
    """

    role: Role
    accounts: frozenset[str]
    key_id: str | None = None
    subject: str | None = None
    client: str | None = None

    def may(self, action: Action, account_id: str | None = None) -> bool:
        """True when this caller may take ``action`` on ``account_id`` (None: no one account)."""
        return may(self.role, action, self.accounts, account_id)

    @property
    def who(self) -> str:
        """How logs and the audit name the caller: ``key:<id>`` or ``sub:<subject>``."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        return f"sub:{self.subject}"


class Credentials(Protocol):
    """Turns a credential into a caller (``oms.api.credentials.Authenticator``)."""

    async def bearer(self, token: str, client: str | None) -> Caller | None:
        """The caller an API key or a JWT proves, or None (unknown, revoked, expired...)."""

    async def ticket(self, ticket: str, client: str | None) -> Caller | None:
        """The caller a WebSocket ticket was issued to, once (None: unknown, used, expired)."""


class InternalHop(Protocol):
    """The trust between replicas (``oms.api.internal_hop``): a read forwarded to the owner
    carries the caller the first replica resolved, signed with the shared internal token."""

    def trusted_caller(self, request: web.Request, body: bytes) -> Caller | None:
        """The caller a forwarded request was signed for, or None (the signature fails)."""


CALLER_KEY = web.RequestKey("caller", Caller)
FORWARDED_KEY = web.RequestKey("forwarded", bool)  # set on a request another replica signed
HOP_KEY = web.AppKey("internal_hop", InternalHop)
# The hop from a door process to its own engine process (``OMS_HTTP_WORKERS``): signed with the
# pod's door token, and, unlike a replica's forward, free to go on to the account's owner.
DOOR_KEY = web.RequestKey("via_door", bool)  # set on a request a door of this pod signed
DOOR_HOP_KEY = web.AppKey("door_hop", InternalHop)
ACTION_KEY = web.RequestKey("action", Action)
CREDENTIALS_KEY = web.AppKey("credentials", Credentials)

# Every route under /api and /ws, and the one action it needs. A route without a row is
# refused (403 NO_ACCESS_RULE), and tests/unit/api/test_access_matrix.py fails on it.
ROUTE_ACTIONS: dict[tuple[str, str], Action] = {
    ("GET", "/api/instruments"): Action.READ_MARKET,
    ("GET", "/api/market-data/prices/{symbol}"): Action.READ_MARKET,
    ("GET", "/api/market-data/orderbook/{symbol}"): Action.READ_MARKET,
    ("GET", "/ws/market-data"): Action.READ_MARKET,
    ("POST", "/api/accounts"): Action.OPEN_ACCOUNT,
    ("GET", "/api/accounts/{account_id}"): Action.READ_ACCOUNT,
    ("GET", "/api/risk/positions"): Action.READ_ACCOUNT,
    ("GET", "/api/risk/limits"): Action.READ_ACCOUNT,
    ("GET", "/api/orders"): Action.READ_ACCOUNT,
    ("GET", "/api/orders/{order_id}"): Action.READ_ACCOUNT,
    ("GET", "/api/orders/{order_id}/events"): Action.READ_ACCOUNT,
    ("GET", "/ws/orders"): Action.READ_ACCOUNT,
    ("POST", "/api/risk/validate"): Action.VALIDATE_ORDER,
    ("POST", "/api/orders"): Action.PLACE_ORDER,
    ("PATCH", "/api/orders/{order_id}"): Action.AMEND_ORDER,
    ("DELETE", "/api/orders/{order_id}"): Action.CANCEL_ORDER,
    ("DELETE", "/api/orders"): Action.CANCEL_ORDER,
    ("PUT", "/api/risk/limits/{account_id}"): Action.SET_LIMITS,
    # The firm-wide caps: risk's and admin's to read and to set (they name no account).
    ("GET", "/api/risk/global-limits"): Action.SET_LIMITS,
    ("PUT", "/api/risk/global-limits"): Action.SET_LIMITS,
    # One account's switch; the route asks for HALT_ALL too when the body names no account.
    ("POST", "/api/risk/kill-switch"): Action.HALT_ACCOUNT,
    ("GET", "/api/audit"): Action.READ_AUDIT,
    ("GET", "/api/venue/reconciliation"): Action.READ_VENUE,
    ("POST", "/api/ws-ticket"): Action.OPEN_STREAM,
    ("GET", "/api/me"): Action.READ_SELF,
    ("GET", "/api/cluster"): Action.READ_CLUSTER,
}

OPEN_PATHS = frozenset({"/api/openapi.json"})
# The header of a request one replica forwards to another: the caller it resolved, signed.
FORWARD_HEADER = "X-OMS-Forwarded"
# The header of a request a door process relays to its engine process: the caller, signed.
DOOR_HEADER = "X-OMS-Door"
TICKET_PARAMETER = "ticket"


def guarded(path: str) -> bool:
    """True for a path that needs a credential."""
    return path.startswith(("/api/", "/ws/")) and path not in OPEN_PATHS


def unauthenticated(code: AccessRefusal, detail: str) -> Problem:
    """401 with the challenge RFC 6750 asks for."""
    return _Unauthenticated(401, code.value, "Unauthorized", detail)


class _Unauthenticated(Problem):
    """A 401: the answer carries ``WWW-Authenticate: Bearer``."""

    __slots__ = ()

    def response(self) -> web.Response:
        """The problem, with its challenge."""
        response = Problem.response(self)
        response.headers["WWW-Authenticate"] = 'Bearer realm="oms"'
        return response


def refused(code: AccessRefusal, detail: str) -> Problem:
    """403: a known caller asking for what it may not have."""
    return Problem(403, code.value, "Forbidden", detail)


async def _forwarded(request: web.Request, hop: InternalHop | None) -> Caller:
    """The caller another replica resolved and signed (the request is then not counted again
    by the rate limits, and its route answers here or 503, never forwards it on)."""
    who = None if hop is None else hop.trusted_caller(request, await request.read())
    if who is None:
        raise unauthenticated(
            AccessRefusal.UNTRUSTED_HOP, "this request is not signed by a replica of this service"
        )
    request[FORWARDED_KEY] = True
    return who


async def _from_door(request: web.Request, hop: InternalHop | None) -> Caller:
    """The caller a door process of this pod resolved and signed (counted there by the rate
    limits; the route may still forward it to the account's owner, one hop on)."""
    who = None if hop is None else hop.trusted_caller(request, await request.read())
    if who is None:
        raise unauthenticated(
            AccessRefusal.UNTRUSTED_HOP, "this request is not signed by a door of this process"
        )
    request[DOOR_KEY] = True
    return who


async def _resolve(request: web.Request) -> Caller:
    if FORWARD_HEADER in request.headers:
        return await _forwarded(request, request.app.get(HOP_KEY))
    if DOOR_HEADER in request.headers:
        return await _from_door(request, request.app.get(DOOR_HOP_KEY))
    credentials = request.app.get(CREDENTIALS_KEY)
    if credentials is None:  # an app built without identity serves no guarded route
        raise unauthenticated(AccessRefusal.INVALID_CREDENTIAL, "no credential is accepted here")
    client = client_address(request)  # behind a trusted proxy, the address it saw
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated(
                AccessRefusal.INVALID_CREDENTIAL, "Authorization must be 'Bearer <key or JWT>'"
            )
        who = await credentials.bearer(token, client)
    elif request.path.startswith("/ws/") and TICKET_PARAMETER in request.query:
        # Browsers cannot set headers on a WebSocket: a ticket from POST /api/ws-ticket.
        who = await credentials.ticket(request.query[TICKET_PARAMETER], client)
    else:
        raise unauthenticated(
            AccessRefusal.MISSING_CREDENTIAL, "send Authorization: Bearer <API key or JWT>"
        )
    if who is None:
        raise unauthenticated(
            AccessRefusal.INVALID_CREDENTIAL, "the credential is unknown, revoked or expired"
        )
    return who


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller of a guarded path once, and check its role against the route."""
    await authorize(request)
    return await handler(request)


async def authorize(request: web.Request) -> None:
    """The auth middleware's work (also run by ``oms.api.door``'s folded one): resolve the
    caller of a guarded path, keep it on the request, refuse a role the route does not allow."""
    resource = request.match_info.route.resource
    # The matched route decides too, not only the path as sent: no spelling of a path that
    # reaches an /api or /ws route can skip the check.
    if not (guarded(request.path) or (resource is not None and guarded(resource.canonical))):
        return
    who = await _resolve(request)
    request[CALLER_KEY] = who
    if resource is None or request.match_info.http_exception is not None:
        return  # the router's own 404 or 405
    action = ROUTE_ACTIONS.get((request.method, resource.canonical))
    if action is None:
        raise refused(AccessRefusal.NO_ACCESS_RULE, "this route has no access rule")
    if reach(who.role, action) is None:
        raise refused(
            AccessRefusal.ROLE_FORBIDS_ACTION, f"role {who.role.value} may not {action.value}"
        )
    request[ACTION_KEY] = action


def caller(request: web.Request) -> Caller:
    """The caller of a guarded request (the middleware resolved it; else a 401)."""
    if CALLER_KEY not in request:
        raise unauthenticated(AccessRefusal.MISSING_CREDENTIAL, "no credential")
    return request[CALLER_KEY]


def forwarded(request: web.Request) -> bool:
    """True for a request another replica forwarded here (its caller checked there)."""
    return FORWARDED_KEY in request


def via_door(request: web.Request) -> bool:
    """True for a request a door process relayed here (its caller checked and counted there)."""
    return DOOR_KEY in request


def known_caller(request: web.Request) -> Caller | None:
    """The caller when there is one (open paths have none): for logs."""
    who: Caller | None = request.get(CALLER_KEY)
    return who


def _action(request: web.Request) -> Action:
    if ACTION_KEY not in request:  # a route reached without the middleware: a bug, refuse
        raise refused(AccessRefusal.NO_ACCESS_RULE, "this route has no access rule")
    return request[ACTION_KEY]


def may_act_for(request: web.Request, account_id: str) -> bool:
    """True when the caller may take the route's action on ``account_id``."""
    return caller(request).may(_action(request), account_id)


def require(request: web.Request, action: Action, account_id: str | None = None) -> None:
    """Refuse (403) unless the caller may take ``action`` on ``account_id``."""
    who = caller(request)
    if who.may(action, account_id):
        return
    if reach(who.role, action) is None:
        raise refused(
            AccessRefusal.ROLE_FORBIDS_ACTION, f"role {who.role.value} may not {action.value}"
        )
    raise refused(
        AccessRefusal.ACCOUNT_NOT_PERMITTED, f"this caller may not act for account {account_id}"
    )


def acting_account(request: web.Request, account_id: str) -> str:
    """The account named by the request, if the caller may act for it (else 403)."""
    require(request, _action(request), account_id)
    correlation.bind(account_id=account_id)  # every log line of the request names it
    return account_id


def query_account(request: web.Request, *, required: bool) -> str | None:
    """The account of a query (``?account_id=``); absent, the caller's one account if it is
    limited to its own, or every account (None) for a caller that reaches them all."""
    raw = request.query.get("account_id")
    if raw is None:
        who = caller(request)
        if reach(who.role, _action(request)) is Reach.OWN:
            if len(who.accounts) == 1:
                return acting_account(request, next(iter(who.accounts)))
            if not who.accounts:
                raise refused(AccessRefusal.ACCOUNT_NOT_PERMITTED, "this caller has no account")
            raise invalid_query(
                [FieldError("account_id", "is required: this caller has several accounts")]
            )
        if required:
            raise invalid_query([FieldError("account_id", "is required")])
        return None
    if not IDENTIFIER.fullmatch(raw):
        raise invalid_query([FieldError("account_id", "is not a valid account id")])
    return acting_account(request, raw)
