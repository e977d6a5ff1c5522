"""Who may do what: roles, actions, and THE one table between them.

A caller has one ``Role`` and a set of accounts. ``ROLE_ACTIONS`` says, per role, which
``Action`` it may take and how far it reaches: ``Reach.OWN`` only for the caller's own accounts,
``Reach.ANY`` for every account. Nothing else in the project decides this; the README's matrix
is checked against this table by ``tests/unit/domain/test_access.py``, and every API route names
the one action it needs (``oms.api.identity.ROUTE_ACTIONS``).

API keys are random secrets of 256 bits, stored only as their SHA-256 digest. Not bcrypt or
argon2: those slow a guess at a *low*-entropy password; nobody can enumerate 2**256 secrets, so
a fast digest loses nothing, and each request can check its key in microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """What kind of caller: each role's actions are its row of ``ROLE_ACTIONS``."""

    ADMIN = "admin"
    RISK = "risk"
    TRADER = "trader"
    VIEWER = "viewer"


class Action(StrEnum):
    """One thing a caller asks the API to do; every route needs exactly one."""

    READ_MARKET = "read_market"  # instruments, prices, order books, live ticks
    READ_ACCOUNT = "read_account"  # balances, positions, limits, orders, their history, live
    VALIDATE_ORDER = "validate_order"  # the pre-trade checks as a dry run
    PLACE_ORDER = "place_order"
    AMEND_ORDER = "amend_order"
    CANCEL_ORDER = "cancel_order"  # one order, or all of an account's
    SET_LIMITS = "set_limits"
    HALT_ACCOUNT = "halt_account"  # one account's kill switch: ACTIVE, HALTED or REDUCING
    HALT_ALL = "halt_all"  # the global kill switch
    OPEN_ACCOUNT = "open_account"
    MANAGE_KEYS = "manage_keys"
    READ_AUDIT = "read_audit"
    OPEN_STREAM = "open_stream"  # a WebSocket ticket (the socket itself checks its action)
    READ_SELF = "read_self"  # who the caller is: its role and accounts (a UI adapts to them)
    READ_CLUSTER = "read_cluster"  # the replicas, their partitions and the owner map (ops)
    READ_VENUE = "read_venue"  # what reconciliation with the venue found


class Reach(StrEnum):
    """How far an allowed action reaches."""

    OWN = "own"  # only the caller's own accounts
    ANY = "any"  # every account


_VIEWER = {
    Action.READ_SELF: Reach.ANY,
    Action.READ_MARKET: Reach.ANY,
    Action.OPEN_STREAM: Reach.ANY,
    Action.READ_ACCOUNT: Reach.OWN,
}
_TRADER = {
    **_VIEWER,
    Action.VALIDATE_ORDER: Reach.OWN,
    Action.PLACE_ORDER: Reach.OWN,
    Action.AMEND_ORDER: Reach.OWN,
    Action.CANCEL_ORDER: Reach.OWN,
}
_RISK = {
    **_VIEWER,
    Action.READ_ACCOUNT: Reach.ANY,
    Action.VALIDATE_ORDER: Reach.ANY,
    Action.SET_LIMITS: Reach.ANY,
    # "halt or reduce an account": its own kill switch, never the global one
    Action.HALT_ACCOUNT: Reach.ANY,
    # Reconciliation halts accounts: who resumes them must see why.
    Action.READ_VENUE: Reach.ANY,
}

ROLE_ACTIONS: dict[Role, dict[Action, Reach]] = {
    Role.VIEWER: _VIEWER,
    Role.TRADER: _TRADER,
    Role.RISK: _RISK,
    Role.ADMIN: dict.fromkeys(Action, Reach.ANY),  # everything, every account
}


def reach(role: Role, action: Action) -> Reach | None:
    """How far ``role`` may take ``action`` (None: not at all)."""
    return ROLE_ACTIONS[role].get(action)


def may(role: Role, action: Action, accounts: frozenset[str], account_id: str | None) -> bool:
    """True when a caller with ``role`` and ``accounts`` may take ``action`` on ``account_id``
    (None: on no account in particular, which only ``Reach.ANY`` allows)."""
    allowed = reach(role, action)
    if allowed is None:
        return False
    if allowed is Reach.ANY:
        return True
    return account_id is not None and account_id in accounts


# --- API keys -------------------------------------------------------------------------------

KEY_PREFIX = "oms_"
# ``oms_<key_id>_<secret>``: the id finds the stored digest in one lookup, the secret proves it.
_KEY = re.compile(r"oms_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: never its secret, only the secret's digest."""

    key_id: str
    digest: str  # SHA-256 of the secret, hex
    role: Role
    accounts: frozenset[str]
    name: str
    created_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        """True once revoked: it authenticates nobody."""
        return self.revoked_at is not None

    def proves(self, secret: str) -> bool:
        """True when ``secret`` is this key's (constant time: the compare leaks no prefix)."""
        return hmac.compare_digest(self.digest, key_digest(secret))


def key_digest(secret: str) -> str:
    """What is stored of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a token shaped like an API key, else None."""
    match = _KEY.fullmatch(token)
    return None if match is None else (match.group(1), match.group(2))


def compose_key(key_id: str, secret: str) -> str:
    """The token a client sends: ``oms_<key_id>_<secret>``."""
    return f"{KEY_PREFIX}{key_id}_{secret}"
