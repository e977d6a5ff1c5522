"""Logging for ``oms serve``: JSON lines or text, correlation ids on every line, and a filter
that keeps an outage to a few lines.

``OMS_LOG_FORMAT=json`` (the container's default, set in the Dockerfile) writes one JSON object
per line, through python-json-logger: ``ts`` (ISO 8601, UTC, milliseconds), ``level``,
``logger``, ``msg``, ``replica``, and where known ``request_id``, ``order_id``, ``account_id``,
``command_id`` (``oms.correlation``'s context, set by the API middleware and the ingestion, or
passed as ``extra``), plus any other ``extra`` fields (the access log's ``method``, ``path``,
``status``, ``duration_ms``, ``key_id``). ``text`` (the default, for a terminal) writes the same
record as one readable line with the correlation fields at its end.

When a server goes away, its clients log the same failure over and over: aiokafka logged
"Unable connect to node" 187,047 times in 24 s of a Kafka outage here (18.8 MB), Redis and
MongoDB retries likewise. An operator needs the first line, how often it repeated, and when it
stopped, not every repetition. ``RepeatFilter`` lets the first record of each kind through (a
kind is its logger, level and message template, not its arguments), drops the repeats for
``window_s``, and then lets the next one through with how many it dropped (in the message, and
as ``repeated`` in JSON). So an outage costs a line per kind per window, whoever logs it. The
access log is exempt: each of its lines is another request, as many as the traffic, not an
outage's echo, and so is a record logged with ``extra=UNTHROTTLED``: each of those is its own
event (a replica's partitions assigned, what a rebuild recovered), and two rebalances seconds
apart must both show.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from oms import correlation
from oms.config import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ACCESS_LOGGER = "oms.access"
# ``extra`` for a line each of whose occurrences is news, never an outage's repetition.
UNTHROTTLED = {"unthrottled": True}
# Third-party loggers that narrate their normal work at INFO (group joins, connections).
QUIET = ("aiokafka", "kafka", "pymongo", "asyncio")
_Kind = tuple[str, int, object]
_CORRELATION = correlation.FIELDS


class RepeatFilter(logging.Filter):
    """Passes the first record of a kind, then at most one per ``window_s`` with a count."""

    def __init__(
        self,
        window_s: float = 10.0,
        *,
        max_kinds: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        exempt: Collection[str] = (ACCESS_LOGGER,),
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_kinds = max_kinds
        self.clock = clock
        self.exempt = frozenset(exempt)
        # Per kind: when its window opened and how many records it dropped since.
        self._kinds: OrderedDict[_Kind, list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat inside its kind's window; the next one after it says how many."""
        if record.name in self.exempt or getattr(record, "unthrottled", False):
            return True
        kind: _Kind = (record.name, record.levelno, record.msg)
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is None:
            self._kinds[kind] = [now, 0.0]
            if len(self._kinds) > self.max_kinds:
                self._kinds.popitem(last=False)
            return True
        self._kinds.move_to_end(kind)
        opened, dropped = seen
        if now - opened < self.window_s:
            seen[1] = dropped + 1
            return False
        seen[0], seen[1] = now, 0.0
        if dropped:
            record.msg = f"{record.msg} [repeated {int(dropped)} more times in {now - opened:.0f}s]"
            record.repeated = int(dropped)
        return True


class ContextFilter(logging.Filter):
    """Puts the replica's name and the correlation ids set in the logging context on each
    record (a field passed as ``extra`` wins: it was known where the line was written)."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica

    def filter(self, record: logging.LogRecord) -> bool:
        """Always True: it adds, never drops."""
        fields = record.__dict__
        fields.setdefault("replica", self.replica)
        for name, value in correlation.current().items():
            fields.setdefault(name, value)
        return True


class JsonFormatter(OrjsonFormatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg``, then the rest."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger", "message": "msg"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """``ts`` first, so a line reads in time order by eye as well as by machine."""
        log_data["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)


class TextFormatter(logging.Formatter):
    """``FORMAT``, then the correlation fields the record carries: ``[request_id=... ...]``."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """The line before any traceback, with the record's correlation fields."""
        line = super().formatMessage(record)
        fields = record.__dict__
        known = [f"{name}={fields[name]}" for name in _CORRELATION if name in fields]
        return f"{line} [{' '.join(known)}]" if known else line


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``OMS_LOG_FORMAT`` (``json`` or ``text``)."""
    if log_format == "json":
        return JsonFormatter()
    return TextFormatter()


def configure(settings: Settings) -> None:
    """Log to stderr at ``settings.log_level`` in ``settings.log_format``, chatty libraries at
    WARNING, repeats bounded, each line with the replica and the correlation ids it has."""
    # Neither format writes where a line was logged from, nor its thread or process: not
    # gathering them halves a record's cost (the logging HOWTO's "Optimization"), which the
    # access log pays on every request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(settings.log_format))
    handler.addFilter(RepeatFilter(settings.log_repeat_window_s))
    handler.addFilter(ContextFilter(settings.replica_name()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    if not settings.access_log:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
