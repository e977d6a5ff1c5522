"""The speed levers that are the process's, not a part's: the event loop and the GIL's switch
interval (issue 19; README "Speed levers"). ``oms serve`` sets them once, before its loop
starts; each is a setting so that both sides can be measured (``bench/levers.sh``).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from oms.config import Settings

logger = logging.getLogger(__name__)


def set_process_levers(settings: Settings) -> None:
    """Pick the event loop every thread of the process will make (the serving loop and any of
    its own a part makes) and the GIL's switch interval; call before any loop exists."""
    if settings.event_loop == "uvloop":
        import uvloop  # noqa: PLC0415 - only a process that serves needs it loaded

        # A policy, not one loop: the store's thread (store_loop="own") makes its loop with
        # new_event_loop too.
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    if settings.gil_switch_interval_s > 0:
        sys.setswitchinterval(settings.gil_switch_interval_s)


def describe_levers(settings: Settings) -> str:
    """One line naming what the levers are set to (logged at start; bench/levers.sh reads the
    settings from its own environment)."""
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return (
        f"event_loop={loop} redis_parser={settings.redis_parser}"
        f" http_middleware={settings.http_middleware}"
        f" gil_switch_interval_s={sys.getswitchinterval():g}"
        f" gc_young_threshold={settings.gc_young_threshold}"
        f" gc_freeze_survivors={settings.gc_freeze_survivors}"
        f" engine_drain_every={settings.engine_drain_every}"
        f" ingest_batch_size={settings.ingest_batch_size}"
        f" ingest_fetch_min_bytes={settings.ingest_fetch_min_bytes}"
        f" ingest_fetch_max_wait_ms={settings.ingest_fetch_max_wait_ms}"
        f" ingest_commit_interval_ms={settings.ingest_commit_interval_ms}"
        f" orders_linger_ms={settings.orders_linger_ms} events_linger_ms={settings.events_linger_ms}"
        f" store_max_batch={settings.store_max_batch} store_linger_s={settings.store_linger_s:g}"
        f" store_concurrency={settings.store_concurrency}"
        f" store_projection={settings.store_projection}"
        f" store_project_linger_s={settings.store_project_linger_s:g}"
        f" store_loop={settings.store_loop}"
        f" engine_loop={settings.engine_loop}"
    )
