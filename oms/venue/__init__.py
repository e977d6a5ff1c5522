"""The venue: a simulated matcher fed by market data, and intake of external execution reports.

``Matcher`` is pure and single-threaded; the actor that runs it is ``oms.actors.venue``. Every execution leaves the venue as an ``ApplyFill`` (``Execution.to_fill``), the same
command an external gateway's fills become (``fill_from_report``). A network venue sits behind
the ``VenuePort`` (``oms.venue.port``): typed answers, and errors that tell a refusal from an
unknown outcome.
"""

from oms.venue.matcher import Matcher
from oms.venue.model import Execution, MatchResult, Outcome, VenueError, VenueOrder
from oms.venue.port import (
    AmendRequest,
    AmendSupport,
    InstrumentRules,
    PlaceRequest,
    RefusalReason,
    UnknownReason,
    VenueOrderState,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenuePort,
    VenueRefused,
    VenueRequestError,
    VenueTrade,
)
from oms.venue.reports import InvalidExecutionReport, fill_from_report, fill_to_report

__all__ = [
    "AmendRequest",
    "AmendSupport",
    "Execution",
    "InstrumentRules",
    "InvalidExecutionReport",
    "MatchResult",
    "Matcher",
    "Outcome",
    "PlaceRequest",
    "RefusalReason",
    "UnknownReason",
    "VenueError",
    "VenueOrder",
    "VenueOrderState",
    "VenueOrderStatus",
    "VenueOutcomeUnknown",
    "VenuePort",
    "VenueRefused",
    "VenueRequestError",
    "VenueTrade",
    "fill_from_report",
    "fill_to_report",
]
