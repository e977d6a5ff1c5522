import { useId, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useDesk } from '../context';
import { ApiError, type Order, type OrderEntry } from '../services/api';

type Props = {
  symbol: string;
  onSymbol: (symbol: string) => void;
  place: (order: OrderEntry) => Promise<Order>;
  /** the orders as the live feed has them: the last placed one's outcome is shown */
  orders: Order[];
};

const PRICED = new Set(['LIMIT', 'STOP_LIMIT']);
const STOPPED = new Set(['STOP_MARKET', 'STOP_LIMIT']);

/** Order entry: every order type and field the server's OpenAPI document lists; the server's
 * field errors (problem+json `errors`) shown under their fields. */
export function TradeForm({ symbol, onSymbol, place, orders }: Props) {
  const { accountId, capabilities, instruments } = useDesk();
  const id = useId();
  const [side, setSide] = useState<'BUY' | 'SELL'>('BUY');
  const [type, setType] = useState(capabilities.orderTypes.includes('LIMIT') ? 'LIMIT' : (capabilities.orderTypes[0] ?? 'LIMIT'));
  const [quantity, setQuantity] = useState('');
  const [price, setPrice] = useState('');
  const [stopPrice, setStopPrice] = useState('');
  const [timeInForce, setTimeInForce] = useState('GTC');
  const [expireAt, setExpireAt] = useState('');
  const [postOnly, setPostOnly] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string | null>(null);
  const [lastId, setLastId] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const fields = new Set(capabilities.orderFields);
  const priced = PRICED.has(type);
  const stopped = STOPPED.has(type) && fields.has('stop_price');
  const expiring = timeInForce === 'GTD' && fields.has('expire_at');
  const last = orders.find((o) => o.order_id === lastId) ?? null;
  const instrument = instruments.find((i) => i.symbol === symbol);

  // A radio group: one tab stop, the arrow keys (and B / S) move the choice.
  function sideKeys(event: KeyboardEvent<HTMLDivElement>) {
    const key = event.key.toLowerCase();
    const next = ['arrowleft', 'arrowright', 'arrowup', 'arrowdown'].includes(key)
      ? side === 'BUY' ? 'SELL' : 'BUY'
      : key === 'b' ? 'BUY' : key === 's' ? 'SELL' : null;
    if (next === null) return;
    event.preventDefault();
    setSide(next);
    event.currentTarget.querySelector<HTMLButtonElement>(`.side.${next.toLowerCase()}`)?.focus();
  }

  function chooseType(next: string) {
    setType(next);
    // a market order cannot rest: its usual time in force is IOC, a resting order's GTC
    setTimeInForce(next === 'MARKET' || next === 'STOP_MARKET' ? 'IOC' : 'GTC');
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    const entry: OrderEntry = { account_id: accountId, symbol, side, type, quantity: quantity.trim() };
    if (priced) entry.price = price.trim();
    if (stopped) entry.stop_price = stopPrice.trim();
    entry.time_in_force = timeInForce;
    if (expiring) entry.expire_at = new Date(expireAt).toISOString();
    if (postOnly && fields.has('post_only')) entry.post_only = true;
    setBusy(true);
    setErrors({});
    setProblem(null);
    try {
      const order = await place(entry);
      setLastId(order.order_id);
    } catch (failure) {
      if (failure instanceof ApiError) {
        const byField = failure.fieldErrors();
        setErrors(byField);
        setProblem(Object.keys(byField).length ? null : `${failure.code}: ${failure.problem?.detail ?? failure.message}`);
      } else {
        setProblem('The server cannot be reached; nothing was placed.');
      }
    } finally {
      setBusy(false);
    }
  }

  const field = (name: string, label: string, input: JSX.Element) => (
    <div className="field">
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {input}
      <span className="field-error" id={`${id}-${name}-error`} role={errors[name] ? 'alert' : undefined} data-field={name}>
        {errors[name] ?? ''}
      </span>
    </div>
  );
  const aria = (name: string) => ({
    id: `${id}-${name}`,
    'aria-invalid': errors[name] ? true : undefined,
    'aria-describedby': `${id}-${name}-error`,
  });

  return (
    <section className="panel trade-form" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Place order</h2>
      <form onSubmit={submit} noValidate>
        <div className="side-toggle" role="radiogroup" aria-label="Side" onKeyDown={sideKeys}>
          {(['BUY', 'SELL'] as const).map((s) => (
            <button
              key={s}
              type="button"
              role="radio"
              aria-checked={side === s}
              tabIndex={side === s ? 0 : -1}
              className={`side ${s.toLowerCase()} ${side === s ? 'active' : ''}`}
              onClick={() => setSide(s)}
            >
              {s === 'BUY' ? 'Buy' : 'Sell'}
            </button>
          ))}
        </div>
        {field(
          'symbol',
          'Symbol',
          <select {...aria('symbol')} value={symbol} onChange={(e) => onSymbol(e.target.value)}>
            {instruments.map((i) => (
              <option key={i.symbol}>{i.symbol}</option>
            ))}
          </select>,
        )}
        {field(
          'type',
          'Type',
          <select {...aria('type')} value={type} onChange={(e) => chooseType(e.target.value)}>
            {capabilities.orderTypes.map((t) => (
              <option key={t} value={t}>
                {t.replace('_', ' ')}
              </option>
            ))}
          </select>,
        )}
        {field(
          'quantity',
          `Quantity${instrument ? ` (lot ${instrument.lot_size})` : ''}`,
          <input {...aria('quantity')} inputMode="decimal" autoComplete="off" value={quantity} onChange={(e) => setQuantity(e.target.value)} />,
        )}
        {priced &&
          field(
            'price',
            `Limit price${instrument ? ` (tick ${instrument.tick_size})` : ''}`,
            <input {...aria('price')} inputMode="decimal" autoComplete="off" value={price} onChange={(e) => setPrice(e.target.value)} />,
          )}
        {stopped &&
          field(
            'stop_price',
            'Stop price',
            <input {...aria('stop_price')} inputMode="decimal" autoComplete="off" value={stopPrice} onChange={(e) => setStopPrice(e.target.value)} />,
          )}
        {field(
          'time_in_force',
          'Time in force',
          <select {...aria('time_in_force')} value={timeInForce} onChange={(e) => setTimeInForce(e.target.value)}>
            {capabilities.timesInForce.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>,
        )}
        {expiring &&
          field('expire_at', 'Expires at', <input {...aria('expire_at')} type="datetime-local" value={expireAt} onChange={(e) => setExpireAt(e.target.value)} />)}
        {fields.has('post_only') && (
          <div className="field checkbox">
            <input id={`${id}-post_only`} type="checkbox" checked={postOnly} onChange={(e) => setPostOnly(e.target.checked)} />
            <label htmlFor={`${id}-post_only`}>Post only</label>
          </div>
        )}
        <button type="submit" className={`primary ${side.toLowerCase()}`} disabled={busy}>
          {side === 'BUY' ? 'Buy' : 'Sell'} {symbol}
        </button>
        <p className="form-status" role="status" aria-live="polite">
          {problem ? (
            <span className="field-error">{problem}</span>
          ) : last ? (
            <>
              Last order <code>{last.order_id.slice(-8)}</code>: <span className={`status status-${last.status}`} data-testid="last-order-status">{last.status}</span>
              {last.reject_reason ? <span className="reason"> {last.reject_reason}</span> : null}
            </>
          ) : (
            '\u00a0'
          )}
        </p>
      </form>
    </section>
  );
}
