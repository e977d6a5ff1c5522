"""How a venue's trade becomes our fill: its id and its fee in the quote asset.

One rule for the venue gateway (which books the trades it reads as they come) and for
reconciliation (which books those it missed): the same trade gets the same fill id from both,
so booking it twice changes nothing, and the same fee.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from oms.venue.port import VenueTrade

logger = logging.getLogger(__name__)


def trade_fill_id(order_id: str, trade_id: str) -> str:
    """The id of the fill that books the venue's trade ``trade_id`` on our order ``order_id``."""
    return f"{order_id}:{trade_id}"


def quote_fee(trade: VenueTrade, symbol: str) -> Decimal:
    """The trade's fee in the quote asset, as the ledger books it. A fee in the base asset (what
    Binance takes from a BUY) is priced at the trade; one in a third asset (BNB) is not ours to
    convert here: booked as zero, and logged."""
    base, _, quote = symbol.partition("-")
    if trade.fee_asset in (None, quote):
        return trade.fee
    if trade.fee_asset == base:
        return trade.fee * trade.price
    logger.warning("fee of trade %s in %s not booked", trade.trade_id, trade.fee_asset)
    return Decimal(0)
