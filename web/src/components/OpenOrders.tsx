import { useId, useState, type FormEvent } from 'react';
import { useDesk } from '../context';
import { ApiError, type Amend, type Order } from '../services/api';
import { Time } from './format';

type Props = {
  open: Order[];
  cancel: (orderId: string) => Promise<void>;
  amend: (orderId: string, change: Amend) => Promise<void>;
};

/** The account's open orders, live, each with cancel (and amend where the server has it). */
export function OpenOrders({ open, cancel, amend }: Props) {
  const { capabilities } = useDesk();
  const id = useId();
  const [editing, setEditing] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  async function run(action: () => Promise<void>) {
    setMessage(null);
    try {
      await action();
    } catch (failure) {
      setMessage(failure instanceof ApiError ? `${failure.code}: ${failure.problem?.detail ?? failure.message}` : 'The server cannot be reached.');
    }
  }

  return (
    <section className="panel open-orders" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>
        Open orders <span className="count">{open.length}</span>
      </h2>
      <p className="field-error" role="status">{message ?? ''}</p>
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
              <th scope="col">Status</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {open.length === 0 && (
              <tr>
                <td colSpan={9} className="empty">
                  No open orders
                </td>
              </tr>
            )}
            {open.map((order) => (
              <tr key={order.order_id} data-order-id={order.order_id}>
                <td>
                  <Time iso={order.created_at} />
                </td>
                <td>{order.symbol}</td>
                <td className={`side-${order.side.toLowerCase()}`}>{order.side}</td>
                <td>{order.type}</td>
                <td className="num">{order.quantity}</td>
                <td className="num">{order.price ?? 'market'}</td>
                <td className="num">{order.filled_quantity}</td>
                <td>
                  <span className={`status status-${order.status}`}>{order.status}</span>
                </td>
                <td className="actions">
                  {capabilities.amend && (
                    <button type="button" onClick={() => setEditing(editing === order.order_id ? null : order.order_id)} aria-expanded={editing === order.order_id}>
                      Amend<span className="visually-hidden"> order {order.order_id}</span>
                    </button>
                  )}
                  <button type="button" className="danger" onClick={() => void run(() => cancel(order.order_id))}>
                    Cancel<span className="visually-hidden"> order {order.order_id}</span>
                  </button>
                  {editing === order.order_id && (
                    <AmendForm
                      order={order}
                      onDone={() => setEditing(null)}
                      amend={(change) => run(() => amend(order.order_id, change))}
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function AmendForm({ order, amend, onDone }: { order: Order; amend: (change: Amend) => Promise<void>; onDone: () => void }) {
  const id = useId();
  const [price, setPrice] = useState(order.price ?? '');
  const [quantity, setQuantity] = useState(order.quantity);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const change: Amend = {};
    if (price !== (order.price ?? '')) change.price = price.trim();
    if (quantity !== order.quantity) change.quantity = quantity.trim();
    await amend(change);
    onDone();
  }

  return (
    <form className="amend" onSubmit={submit}>
      <label htmlFor={`${id}-p`}>Price</label>
      <input id={`${id}-p`} inputMode="decimal" value={price} onChange={(e) => setPrice(e.target.value)} />
      <label htmlFor={`${id}-q`}>Quantity</label>
      <input id={`${id}-q`} inputMode="decimal" value={quantity} onChange={(e) => setQuantity(e.target.value)} />
      <button type="submit">Send amend</button>
    </form>
  );
}
