"""Rate limits per caller and per client address, shared by every replica (429 past them).

Every authenticated request (a route under ``/api`` or ``/ws`` whose caller is known) counts
against two GCRA buckets at once (``oms.domain.rate_limits``): its credential's (the API key, or
the JWT's subject) and its client address's. The key's rate is ``OMS_RATE_LIMIT_KEY_PER_S``
times its role's share (``ROLE_SHARE``), its burst likewise; the address's is
``OMS_RATE_LIMIT_IP_PER_S``. Past either: 429 ``RATE_LIMITED`` naming the limit, with
``Retry-After``. A rate of 0 switches that limit off. Probes, metrics and the OpenAPI document
are never limited; a request refused 401 never reaches a bucket (the edge's WAF rule bounds
floods by address in AWS).

Redis down: each replica falls back to its own in-memory buckets (the same rates, the same
algorithm) and tries Redis again after ``SHARED_RETRY_S``; so during an outage a caller spread
over N replicas gets at most N times its rate, never an unlimited one, and reads go on being
served. An order with an ``Idempotency-Key`` or a ``client_order_id`` needs Redis for its claim:
it answers 503 while Redis is away (fails closed); one without either (a retry would be a new
order anyway) is held by the replica's bucket like any request. One log line when the fallback
starts and one when Redis counts again.

A placement (``POST /api/orders``) counts itself (``counts_itself``, ``Admission``) rather than
in the middleware: when it makes claims, its count rides in the claims' own Redis call, and the
claims are taken only if the buckets let it through (``ClaimingRateLimits``). So a 429 still
claims nothing, and the placement waits on Redis once before its produce, not twice (issue 19:
on a busy machine every wait is a turn at the scheduler). Every other outcome counts as before:
a placement refused for its body, or relayed by a door to its engine, is counted first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from oms.api.identity import ACTION_KEY, Caller, forwarded, known_caller, via_door
from oms.api.outages import REDIS_DOWN
from oms.api.problems import Problem
from oms.config import Settings
from oms.domain.access import Action, Role
from oms.domain.rate_limits import MICROS, Bucket, LimitScope, Rate, Verdict
from oms.engine.ports import Claim

logger = logging.getLogger(__name__)


class RateLimitStore(Protocol):
    """Where buckets are counted: Redis (shared) or this process's memory (``oms.store``)."""

    async def acquire(self, buckets: Sequence[Bucket]) -> Verdict:
        """Count one request against every bucket at once, or refuse it saying how long."""


class ClaimingRateLimits(Protocol):
    """A placement's buckets and its idempotency claims in one step (``oms.store``): Redis's
    ``RedisAdmission``, one script call; ``MemoryAdmission`` for the unit tests."""

    async def acquire_and_claim(
        self,
        buckets: Sequence[Bucket],
        keys: Sequence[str],
        order_id: str,
        fingerprint: bytes,
        ttl_s: int,
    ) -> tuple[Verdict, list[Claim]]:
        """The verdict; only when it lets the request through, the claims (as
        ``IdempotencyStore.claim`` answers them), else none."""


# A role's share of the per-key rate (and burst). Traders place and cancel in bursts, admins
# script the desk's set-up; risk and viewers read, so a quarter leaves them ample room.
ROLE_SHARE: dict[Role, float] = {
    Role.ADMIN: 1.0,
    Role.TRADER: 1.0,
    Role.RISK: 0.25,
    Role.VIEWER: 0.25,
}

# How long a check may wait on Redis before this replica counts on its own: a local Redis
# answers in about a millisecond, and a limiter must not add the dependency timeout to a read.
SHARED_TIMEOUT_S = 0.25
# After Redis failed, how long the replica counts on its own before asking Redis again: one
# failed call per second, not one per request, while it is away.
SHARED_RETRY_S = 1.0
# Redis unreachable, or too slow for the limiter's wait: the replica counts on its own.
_REDIS_AWAY: tuple[type[Exception], ...] = (TimeoutError, *REDIS_DOWN)


class RateLimited(Problem):
    """429: past a rate limit; ``limit`` says which (``key`` or ``address``)."""

    __slots__ = ("limit", "retry_after_s")

    def __init__(self, limit: LimitScope, retry_after_s: int) -> None:
        """The 429 of ``limit``, to be retried after ``retry_after_s`` seconds."""
        detail = f"too many requests for this {limit.value}; retry after {retry_after_s} s"
        Problem.__init__(self, 429, "RATE_LIMITED", "Too many requests", detail)
        self.limit = limit
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, object]:
        """The problem document, with the ``limit`` that refused the request."""
        return {**Problem.body(self), "limit": self.limit.value}

    def response(self) -> web.Response:
        """The answer, with ``Retry-After`` (whole seconds, at least 1)."""
        response = Problem.response(self)
        response.headers["Retry-After"] = str(self.retry_after_s)
        return response


class RateLimiter:
    """Decides whether a caller's request passes: Redis first, this replica's buckets after."""

    def __init__(
        self,
        settings: Settings,
        shared: RateLimitStore,
        local: RateLimitStore,
        clock: Callable[[], float] = time.monotonic,
        claiming: ClaimingRateLimits | None = None,
    ) -> None:
        """``shared``: every replica's buckets (Redis); ``local``: this one's (memory);
        ``claiming``: the shared buckets with a placement's claims (None: counted apart)."""
        key_rate = _rate(settings.rate_limit_key_per_s, settings.rate_limit_key_burst)
        self._key_rates: dict[Role, Rate] | None = None
        if key_rate is not None:
            self._key_rates = {
                role: Rate(key_rate.per_s * share, max(1, int(key_rate.burst * share)))
                for role, share in ROLE_SHARE.items()
            }
        self._address_rate = _rate(settings.rate_limit_ip_per_s, settings.rate_limit_ip_burst)
        self._shared = shared
        self._local = local
        self._claiming = claiming
        self._clock = clock
        self._local_until = 0.0  # while the clock is below this, Redis is not asked
        self.fallbacks = 0  # checks answered by the local buckets (for /metrics)
        self.refused: dict[str, int] = {}  # requests refused, by the limit that refused them

    @property
    def enabled(self) -> bool:
        """False when both limits are switched off."""
        return self._key_rates is not None or self._address_rate is not None

    def buckets(self, who: Caller) -> list[Bucket]:
        """The buckets a request of ``who`` counts against."""
        buckets: list[Bucket] = []
        if self._key_rates is not None:
            buckets.append(Bucket(LimitScope.KEY, who.who, self._key_rates[who.role]))
        if self._address_rate is not None and who.client:
            buckets.append(Bucket(LimitScope.ADDRESS, who.client, self._address_rate))
        return buckets

    async def check(self, who: Caller) -> Verdict:
        """Count a request of ``who``; the verdict (Redis's, or this replica's if it is away)."""
        return self._noted(await self._check(self.buckets(who)))

    async def check_claiming(
        self,
        who: Caller,
        keys: Sequence[str],
        order_id: str,
        fingerprint: bytes,
        *,
        ttl_s: int,
    ) -> tuple[Verdict, list[Claim] | None]:
        """``check``, with a placement's claims taken in the same Redis call if it passes.

        The claims are None when they were not taken here: refused, or counted without Redis
        (away, or no ``claiming`` store); the placement then claims on its own (and answers 503
        while Redis is away). Not timed here: the call is the claim's wait as well as the
        count's, and the placement bounds its waits (``oms.api.outages.Waits``).
        """
        buckets = self.buckets(who)
        if self._claiming is None or self._clock() < self._local_until:
            return self._noted(await self._check(buckets)), None
        try:
            call = self._claiming.acquire_and_claim(buckets, keys, order_id, fingerprint, ttl_s)
            verdict, claims = await call
        except _REDIS_AWAY as exc:  # anything else (a script's bug) is a 500
            self._fall_back(exc)
            self.fallbacks += 1
            return self._noted(await self._local.acquire(buckets)), None
        self._shared_again()
        return self._noted(verdict), (claims if verdict.allowed else None)

    def _noted(self, verdict: Verdict) -> Verdict:
        if verdict.refused_by is not None:
            scope = verdict.refused_by.value
            self.refused[scope] = self.refused.get(scope, 0) + 1
        return verdict

    async def _check(self, buckets: list[Bucket]) -> Verdict:
        if self._clock() >= self._local_until:
            try:
                async with asyncio.timeout(SHARED_TIMEOUT_S):
                    verdict = await self._shared.acquire(buckets)
            except _REDIS_AWAY as exc:  # anything else (a script's bug) is a 500
                self._fall_back(exc)
            else:
                self._shared_again()
                return verdict
        self.fallbacks += 1
        return await self._local.acquire(buckets)

    def _shared_again(self) -> None:
        if self._local_until:
            self._local_until = 0.0
            logger.warning("rate limits: Redis counts again; buckets shared")

    def _fall_back(self, error: Exception) -> None:
        """Count here for a while: Redis is unreachable or too slow."""
        if not self._local_until:
            logger.warning(
                "rate limits: Redis unavailable (%r); each replica counts on its own until it"
                " answers", error,
            )  # fmt: skip
        self._local_until = self._clock() + SHARED_RETRY_S


def _rate(per_s: float, burst: int) -> Rate | None:
    return None if per_s <= 0 else Rate(per_s, max(1, burst))


def retry_after_s(verdict: Verdict) -> int:
    """``Retry-After`` of a refusal: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(verdict.retry_after_us / MICROS))


RATE_LIMITER_KEY = web.AppKey("rate_limiter", RateLimiter)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 a request of a known caller past its limits; mounted inside the auth middleware."""
    await limit(request)
    return await handler(request)


async def limit(request: web.Request) -> None:
    """The rate-limit middleware's work (also run by ``oms.api.door``'s folded one, after
    ``identity.authorize``): count a known caller's request, 429 past its limits.

    A read another replica forwarded here, or a request a door process relayed, was counted
    there: it is not counted twice. A placement counts itself (``counts_itself``)."""
    if request.get(ACTION_KEY) is Action.PLACE_ORDER:
        return
    await Admission.of(request).settle()


class Admission:
    """One request's count against its limits, made once: alone (``settle``), or in its
    claims' Redis call (``claim``)."""

    __slots__ = ("_limiter", "_who", "settled")

    def __init__(self, limiter: RateLimiter | None, who: Caller | None) -> None:
        """Nothing to count (settled already) without a limiter or a caller."""
        self._limiter = limiter
        self._who = who
        self.settled = limiter is None or who is None

    @classmethod
    def of(cls, request: web.Request) -> Admission:
        """The request's count: none for an open path, with the limits off, or for a request
        a door or another replica relayed (counted there)."""
        who = known_caller(request)
        limiter = request.app.get(RATE_LIMITER_KEY)
        if limiter is None or not limiter.enabled or forwarded(request) or via_door(request):
            return cls(None, who)
        return cls(limiter, who)

    async def settle(self) -> None:
        """Count the request now (once), 429 past its limits."""
        if self.settled:
            return
        self.settled = True
        assert self._limiter is not None  # else settled
        assert self._who is not None
        _refuse_past(await self._limiter.check(self._who))

    async def claim(
        self, keys: Sequence[str], order_id: str, fingerprint: bytes, ttl_s: int
    ) -> list[Claim] | None:
        """Count the request with its claims (``RateLimiter.check_claiming``), 429 past its
        limits; the claims, or None when the caller must claim on its own (counted already,
        or counted without Redis)."""
        if self.settled:
            return None
        self.settled = True
        assert self._limiter is not None  # else settled
        assert self._who is not None
        limiter = self._limiter
        verdict, claims = await limiter.check_claiming(
            self._who, keys, order_id, fingerprint, ttl_s=ttl_s
        )
        _refuse_past(verdict)
        return claims


def _refuse_past(verdict: Verdict) -> None:
    if not verdict.allowed:
        assert verdict.refused_by is not None
        raise RateLimited(verdict.refused_by, retry_after_s(verdict))


ADMISSION_KEY = web.RequestKey("admission", Admission)


def counts_itself(handler: Handler) -> Handler:
    """A placement handler that counts its own request (``Admission``, in ``ADMISSION_KEY``).

    The handler counts it before anything it does: in its claims' call, or with ``settle``
    before a request without claims is sent, or relayed. A request the handler refuses
    (422, 403, 503) is counted here, and past its limits the 429 is its answer, as when the
    middleware counted every request first. One it answered without counting (none should) is
    counted after: the limit is never skipped, though it can no longer refuse that one.
    """

    async def counted(request: web.Request) -> web.StreamResponse:
        admission = Admission.of(request)
        request[ADMISSION_KEY] = admission
        try:
            response = await handler(request)
        except (Problem, web.HTTPException):
            await admission.settle()
            raise
        if not admission.settled:
            with contextlib.suppress(RateLimited):
                await admission.settle()
        return response

    return counted


async def settle(request: web.Request) -> None:
    """Count a placement now (``counts_itself``'s handlers, before a relay): 429 past its
    limits; nothing for a request counted already, or not a placement."""
    admission = request.get(ADMISSION_KEY)
    if admission is not None:
        await admission.settle()
