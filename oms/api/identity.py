"""Who is calling, and for which account they may act: the one place the API answers that.

Today nobody authenticates: the caller is unrestricted and the account comes from the request
(the order's ``account_id``, or the ``account_id`` query parameter). When API keys land
(``Authorization: Bearer <key>``), ``caller`` resolves the key to an account or an admin, and
every route keeps calling the functions below unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from oms import correlation
from oms.api.problems import FieldError, forbidden, invalid_query
from oms.domain.accounts import IDENTIFIER


@dataclass(frozen=True, slots=True)
class Caller:
    """The party behind a request: tied to one account, or not (an admin, or nobody yet).
    ``key_id`` names the API key it used (never the key): the access log writes it."""

    account_id: str | None
    is_admin: bool
    key_id: str | None = None


UNRESTRICTED = Caller(account_id=None, is_admin=True)


def caller(_request: web.Request) -> Caller:
    """The caller of ``request`` (no authentication yet: unrestricted)."""
    return UNRESTRICTED


def may_act_for(request: web.Request, account_id: str) -> bool:
    """True when the caller may see and trade ``account_id``."""
    who = caller(request)
    return who.is_admin or who.account_id == account_id


def acting_account(request: web.Request, account_id: str) -> str:
    """The account named by the request, if the caller may act for it (else 403)."""
    if not may_act_for(request, account_id):
        raise forbidden(f"this key may not act for account {account_id}")
    correlation.bind(account_id=account_id)  # every log line of the request names it
    return account_id


def query_account(request: web.Request, *, required: bool) -> str | None:
    """The account of a query (``?account_id=``): the caller's own when it has one."""
    raw = request.query.get("account_id")
    if raw is None:
        who = caller(request)
        if who.account_id is not None:
            return who.account_id
        if required:
            raise invalid_query([FieldError("account_id", "is required")])
        return None
    if not IDENTIFIER.fullmatch(raw):
        raise invalid_query([FieldError("account_id", "is not a valid account id")])
    return acting_account(request, raw)


def require_admin(request: web.Request) -> None:
    """Refuse (403) a caller that may not change limits or the kill switch."""
    if not caller(request).is_admin:
        raise forbidden("only an admin key may do this")
