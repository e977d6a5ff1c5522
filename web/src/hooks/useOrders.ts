import { useCallback, useEffect, useRef, useState } from 'react';
import { useDesk } from '../context';
import { OPEN_STATUSES, type Amend, type Order, type OrderEntry, type OrderStatus } from '../services/api';
import type { LiveState } from '../services/websocket';
import { useWebSocket } from './useWebSocket';

export type OrderEventMessage = {
  type: 'order_event';
  account_id: string;
  order_id: string;
  status: OrderStatus;
  event: { type: string; reason?: string; [field: string]: unknown };
};

export function isOrderEvent(message: unknown): message is OrderEventMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'order_event';
}

/** Apply one live event to the orders known: the status moves, the rest is read again. The
 * order takes the event's sequence as its version (the order's version after it), so that a
 * read begun before the event (an amend's re-read, answered after a cancel) cannot put the
 * older state back: the merge keeps the higher version. */
export function applyEvent(orders: Map<string, Order>, message: OrderEventMessage): Map<string, Order> {
  const known = orders.get(message.order_id);
  if (!known) return orders;
  const next = new Map(orders);
  const reason = message.event.type === 'OrderRejected' ? (message.event.reason as Order['reject_reason']) : known.reject_reason;
  const sequence = typeof message.event.sequence === 'number' ? message.event.sequence : known.version;
  next.set(message.order_id, {
    ...known,
    status: message.status,
    reject_reason: reason ?? known.reject_reason,
    version: Math.max(known.version, sequence),
  });
  return next;
}

export type Orders = {
  /** this account's orders the screen knows, newest first */
  orders: Order[];
  open: Order[];
  /** bumped on every live event: panels that show derived figures read again */
  version: number;
  live: LiveState;
  place: (order: OrderEntry) => Promise<Order>;
  cancel: (orderId: string) => Promise<void>;
  amend: (orderId: string, change: Amend) => Promise<void>;
};

const RECENT = 100;
const RELOAD_AFTER_MS = 100;
// Events whose whole effect on the order is its status (and reject reason).
const STATUS_ONLY = new Set(['OrderPlaced', 'OrderAccepted', 'OrderRejected', 'OrderCancelled', 'OrderSettled']);

/** The account's orders: a first page read over REST, then kept current by `/ws/orders`. */
export function useOrders(): Orders {
  const { api, accountId } = useDesk();
  const [orders, setOrders] = useState<Map<string, Order>>(new Map());
  const [version, setVersion] = useState(0);
  const reading = useRef(0);

  const reload = useCallback(async () => {
    const ticket = ++reading.current;
    const page = await api.orders({ account_id: accountId, limit: RECENT });
    if (ticket !== reading.current) return; // a newer read is under way
    setOrders((current) => {
      const next = new Map<string, Order>();
      for (const order of page.items) {
        const mine = current.get(order.order_id);
        // the live feed may be ahead of the read: keep the later version
        next.set(order.order_id, mine && mine.version > order.version ? mine : order);
      }
      for (const [id, order] of current) if (!next.has(id) && order.status === 'NEW') next.set(id, order);
      return next;
    });
  }, [api, accountId]);

  useEffect(() => {
    void reload().catch(() => undefined);
  }, [reload]);

  // One read for a burst of events (a market order's fills and settlement arrive together).
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  const soon = useCallback(() => {
    if (pending.current !== null) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      void reload().catch(() => undefined);
    }, RELOAD_AFTER_MS);
  }, [reload]);
  useEffect(() => () => void (pending.current !== null && clearTimeout(pending.current)), []);

  const live = useWebSocket('/ws/orders', { account_id: accountId }, (message) => {
    if (!isOrderEvent(message)) {
      if ((message as { type?: string }).type === 'subscribed') void reload().catch(() => undefined);
      return;
    }
    setOrders((current) => {
      if (!current.has(message.order_id)) {
        soon(); // placed elsewhere (another tab, Kafka): read it
        return current;
      }
      return applyEvent(current, message);
    });
    // a fill or an amend changes more than the status: read the orders again
    if (!STATUS_ONLY.has(message.event.type)) soon();
    setVersion((v) => v + 1);
  });

  const place = useCallback(
    async (entry: OrderEntry) => {
      const order = await api.placeOrder(entry, crypto.randomUUID());
      setOrders((current) => (current.has(order.order_id) ? current : new Map([[order.order_id, order], ...current])));
      return order;
    },
    [api],
  );
  const cancel = useCallback(async (orderId: string) => void (await api.cancelOrder(orderId)), [api]);
  const amend = useCallback(
    async (orderId: string, change: Amend) => {
      await api.amendOrder(orderId, change);
      await reload();
    },
    [api, reload],
  );

  const list = [...orders.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return {
    orders: list,
    open: list.filter((o) => OPEN_STATUSES.includes(o.status)),
    version,
    live,
    place,
    cancel,
    amend,
  };
}
