import { useEffect, useState } from 'react';
import { useDesk } from '../context';
import type { OrderBook } from '../services/api';
import type { LiveState } from '../services/websocket';
import { useWebSocket } from './useWebSocket';

export type PricePoint = { time: number; value: number };
const KEEP_POINTS = 600;

/** The symbol's live book (a REST read first, then `/ws/market-data` ticks) and its prices. */
export function useMarket(symbol: string): { book: OrderBook | null; prices: PricePoint[]; live: LiveState } {
  const { api } = useDesk();
  const [book, setBook] = useState<OrderBook | null>(null);
  const [prices, setPrices] = useState<PricePoint[]>([]);

  useEffect(() => {
    setBook(null);
    setPrices([]);
    api.orderBook(symbol).then(setBook, () => undefined);
  }, [api, symbol]);

  const live = useWebSocket('/ws/market-data', { symbols: symbol }, (message) => {
    const tick = message as Partial<OrderBook> & { type?: string };
    if (tick.type !== 'tick' || tick.symbol !== symbol) return;
    setBook(tick as OrderBook);
    const time = Math.floor(Date.parse(tick.time ?? '') / 1000);
    const value = Number(tick.last_price);
    if (!Number.isFinite(time) || !Number.isFinite(value)) return;
    setPrices((points) => {
      const last = points[points.length - 1];
      // one point per second: the chart's time scale needs strictly increasing times
      const next = last && last.time >= time ? [...points.slice(0, -1), { time: last.time, value }] : [...points, { time, value }];
      return next.length > KEEP_POINTS ? next.slice(-KEEP_POINTS) : next;
    });
  });

  return { book, prices, live };
}
