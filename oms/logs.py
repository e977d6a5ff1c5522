"""Logging for ``oms serve``: one format, and a filter that keeps an outage to a few lines.

When a server goes away, its clients log the same failure over and over: aiokafka logged
"Unable connect to node" 187,047 times in 24 s of a Kafka outage here (18.8 MB), Redis and
MongoDB retries likewise. An operator needs the first line, how often it repeated, and when it
stopped, not every repetition. ``RepeatFilter`` lets the first record of each kind through (a
kind is its logger, level and message template, not its arguments), drops the repeats for
``window_s``, and then lets the next one through with how many it dropped. So an outage costs a
line per kind per window, whoever logs it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from oms.config import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Third-party loggers that narrate their normal work at INFO (group joins, connections).
QUIET = ("aiokafka", "kafka", "pymongo", "asyncio")
_Kind = tuple[str, int, object]


class RepeatFilter(logging.Filter):
    """Passes the first record of a kind, then at most one per ``window_s`` with a count."""

    def __init__(
        self,
        window_s: float = 10.0,
        *,
        max_kinds: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_kinds = max_kinds
        self.clock = clock
        # Per kind: when its window opened and how many records it dropped since.
        self._kinds: OrderedDict[_Kind, list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat inside its kind's window; the next one after it says how many."""
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
        return True


def configure(settings: Settings) -> None:
    """Log to stderr at ``settings.log_level``, chatty libraries at WARNING, repeats bounded."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RepeatFilter(settings.log_repeat_window_s))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
