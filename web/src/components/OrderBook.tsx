import { useId } from 'react';
import type { BookLevel, OrderBook as Book } from '../services/api';
import type { LiveState } from '../services/websocket';
import { trimDecimal } from './format';

// A fixed number of rows (the live feed's depth): the panel never changes height as the book moves.
const ROWS = 10;

/** The live book: asks above, bids below, a bar per level's size, and the depth chart. */
export function OrderBook({ symbol, book, live }: { symbol: string; book: Book | null; live: LiveState }) {
  const id = useId();
  const asks = pad(book?.asks ?? []).reverse();
  const bids = pad(book?.bids ?? []);
  const largest = Math.max(1e-12, ...[...(book?.asks ?? []), ...(book?.bids ?? [])].map((l) => Number(l.quantity)));
  const spread = book?.best_ask && book?.best_bid ? (Number(book.best_ask) - Number(book.best_bid)).toFixed(2) : '—';

  const row = (level: BookLevel | null, side: 'ask' | 'bid', index: number) => (
    <tr key={`${side}-${index}`} className={side}>
      <td className="num price">{level ? level.price : '\u00a0'}</td>
      <td className="num qty">
        {level && <span className="bar" style={{ width: `${(Number(level.quantity) / largest) * 100}%` }} aria-hidden="true" />}
        <span>{level ? trimDecimal(level.quantity, 6) : ''}</span>
      </td>
    </tr>
  );

  return (
    <section className="panel order-book" aria-labelledby={`${id}-title`}>
      <div className="panel-head">
        <h2 id={`${id}-title`}>Order book {symbol}</h2>
        <span className={`live live-${live}`} title={`market data ${live}`}>
          {live}
        </span>
      </div>
      <table aria-label={`${symbol} order book`}>
        <thead>
          <tr>
            <th scope="col" className="num">Price</th>
            <th scope="col" className="num">Size</th>
          </tr>
        </thead>
        <tbody>{asks.map((level, i) => row(level, 'ask', i))}</tbody>
        <tbody>
          <tr className="mid">
            <td className="num" data-testid="last-price">
              {book ? trimDecimal(book.last_price, 2) : '—'}
            </td>
            <td className="num">spread {spread}</td>
          </tr>
        </tbody>
        <tbody>{bids.map((level, i) => row(level, 'bid', i))}</tbody>
      </table>
      <DepthChart book={book} />
    </section>
  );
}

function pad(levels: BookLevel[]): (BookLevel | null)[] {
  const rows: (BookLevel | null)[] = levels.slice(0, ROWS);
  while (rows.length < ROWS) rows.push(null);
  return rows;
}

/** Cumulative size by price, bids left and asks right, drawn as two stepped areas. */
export function DepthChart({ book, width = 280, height = 110 }: { book: Book | null; width?: number; height?: number }) {
  const bids = cumulative(book?.bids ?? []);
  const asks = cumulative(book?.asks ?? []);
  const prices = [...bids, ...asks].map((p) => p.price);
  const depth = Math.max(1e-12, ...[...bids, ...asks].map((p) => p.total));
  const low = Math.min(...prices);
  const high = Math.max(...prices);
  const x = (price: number) => (high > low ? ((price - low) / (high - low)) * width : width / 2);
  const y = (total: number) => height - (total / depth) * (height - 4);
  const area = (points: { price: number; total: number }[]) =>
    points.length === 0
      ? ''
      : `M${x(points[0]!.price)},${height} ` +
        points.map((p) => `L${x(p.price)},${y(p.total)}`).join(' ') +
        ` L${x(points[points.length - 1]!.price)},${height} Z`;
  return (
    <svg className="depth-chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label="Depth chart: cumulative bid and ask size by price">
      <path className="depth-bids" d={area(bids)} />
      <path className="depth-asks" d={area(asks)} />
    </svg>
  );
}

function cumulative(levels: BookLevel[]): { price: number; total: number }[] {
  let total = 0;
  return levels.map((level) => ({ price: Number(level.price), total: (total += Number(level.quantity)) }));
}
