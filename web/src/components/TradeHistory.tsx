import { Fragment, useEffect, useId, useState } from 'react';
import { useDesk } from '../context';
import { ApiError, type Order, type OrderEvent, type OrderStatus } from '../services/api';
import { Time, trimDecimal } from './format';

const PAGE = 20;

/** Every order of the account, newest first, filtered by symbol and status and paged with the
 * server's cursor; a row opens its fills. The first page follows live events (`version`). */
export function TradeHistory({ version }: { version: number }) {
  const { api, accountId, instruments, capabilities } = useDesk();
  const id = useId();
  const [symbol, setSymbol] = useState('');
  const [status, setStatus] = useState<OrderStatus | ''>('');
  // cursors[i] opens page i (page 0 has none): "Newer" pops, "Older" pushes next_cursor
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [items, setItems] = useState<Order[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const page = cursors.length - 1;
  const cursor = cursors[page];
  const liveVersion = page === 0 ? version : 0; // older pages stay still while read

  useEffect(() => {
    let alive = true;
    api
      .orders({ account_id: accountId, symbol: symbol || undefined, status: status || undefined, limit: PAGE, cursor })
      .then(
        (answer) => {
          if (!alive) return;
          setItems(answer.items);
          setNext(answer.next_cursor);
          setError(null);
        },
        (failure: unknown) => alive && setError(failure instanceof ApiError ? failure.message : 'server unreachable'),
      );
    return () => {
      alive = false;
    };
  }, [api, accountId, symbol, status, cursor, liveVersion]);

  const refilter = (change: () => void) => {
    change();
    setCursors([undefined]);
  };

  return (
    <section className="panel history" aria-labelledby={`${id}-title`}>
      <div className="panel-head">
        <h2 id={`${id}-title`}>Order history</h2>
        <div className="filters">
          <label htmlFor={`${id}-symbol`}>Symbol</label>
          <select id={`${id}-symbol`} value={symbol} onChange={(e) => refilter(() => setSymbol(e.target.value))}>
            <option value="">all</option>
            {instruments.map((i) => (
              <option key={i.symbol}>{i.symbol}</option>
            ))}
          </select>
          <label htmlFor={`${id}-status`}>Status</label>
          <select id={`${id}-status`} value={status} onChange={(e) => refilter(() => setStatus(e.target.value as OrderStatus | ''))}>
            <option value="">all</option>
            {capabilities.statuses.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
          <button type="button" disabled={page === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
            Newer
          </button>
          <span className="page" aria-live="polite">
            page {page + 1}
          </span>
          <button type="button" disabled={next === null} onClick={() => next !== null && setCursors((c) => [...c, next])}>
            Older
          </button>
        </div>
      </div>
      {error && <p className="field-error">{error}</p>}
      <div className="table-scroll" tabIndex={0} role="region" aria-labelledby={`${id}-title`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Symbol</th>
              <th scope="col">Side</th>
              <th scope="col">Type</th>
              <th scope="col" className="num">Quantity</th>
              <th scope="col" className="num">Price</th>
              <th scope="col" className="num">Filled</th>
              <th scope="col" className="num">Avg fill</th>
              <th scope="col">Status</th>
              <th scope="col">Fills</th>
            </tr>
          </thead>
          <tbody>
            {items.map((order) => (
              <Fragment key={order.order_id}>
                <tr data-order-id={order.order_id}>
                  <td>
                    <Time iso={order.created_at} />
                  </td>
                  <td>{order.symbol}</td>
                  <td className={`side-${order.side.toLowerCase()}`}>{order.side}</td>
                  <td>{order.type}</td>
                  <td className="num">{order.quantity}</td>
                  <td className="num">{order.price ?? 'market'}</td>
                  <td className="num">{order.filled_quantity}</td>
                  <td className="num">{trimDecimal(order.average_fill_price, 2)}</td>
                  <td>
                    <span className={`status status-${order.status}`}>{order.status}</span>
                    {order.reject_reason ? <span className="reason"> {order.reject_reason}</span> : null}
                  </td>
                  <td>
                    <button
                      type="button"
                      aria-expanded={open === order.order_id}
                      disabled={order.filled_quantity === '0' || Number(order.filled_quantity) === 0}
                      onClick={() => setOpen(open === order.order_id ? null : order.order_id)}
                    >
                      Fills<span className="visually-hidden"> of order {order.order_id}</span>
                    </button>
                  </td>
                </tr>
                {open === order.order_id && (
                  <tr className="fills">
                    <td colSpan={10}>
                      <Fills orderId={order.order_id} />
                    </td>
                  </tr>
                )}
              </Fragment>
            ))}
            {items.length === 0 && (
              <tr>
                <td colSpan={10} className="empty">
                  No orders
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Fills({ orderId }: { orderId: string }) {
  const { api } = useDesk();
  const [fills, setFills] = useState<OrderEvent[] | null>(null);
  useEffect(() => {
    api.orderEvents(orderId).then(
      (history) => setFills(history.events.filter((e) => e.type === 'OrderFilled') as OrderEvent[]),
      () => setFills([]),
    );
  }, [api, orderId]);
  if (fills === null) return <span>Reading fills…</span>;
  if (fills.length === 0) return <span>No fills</span>;
  return (
    <ul className="fill-list">
      {fills.map((fill) => (
        <li key={fill.sequence}>
          <Time iso={fill.at} /> {String(fill.quantity)} @ {String(fill.price)}
          {fill.fee !== undefined ? ` (fee ${String(fill.fee)})` : ''}
        </li>
      ))}
    </ul>
  );
}
