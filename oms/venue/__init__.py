"""The venue: a simulated matcher fed by market data, and intake of external execution reports.

``Matcher`` is pure and single-threaded; the actor that runs it is ``oms.actors.venue``. Every execution leaves the venue as an ``ApplyFill`` (``Execution.to_fill``), the same
command an external gateway's fills become (``fill_from_report``).
"""

from oms.venue.matcher import Matcher
from oms.venue.model import Execution, MatchResult, Outcome, VenueError, VenueOrder
from oms.venue.reports import InvalidExecutionReport, fill_from_report, fill_to_report

__all__ = [
    "Execution",
    "InvalidExecutionReport",
    "MatchResult",
    "Matcher",
    "Outcome",
    "VenueError",
    "VenueOrder",
    "fill_from_report",
    "fill_to_report",
]
