import { useId } from 'react';
import type { Account } from '../services/api';
import { trimDecimal } from './format';

/** Balances (total, available, reserved), positions with PnL, and the account's state. */
export function PositionTable({ account, error }: { account: Account | null; error: string | null }) {
  const id = useId();
  const balances = Object.entries(account?.balances ?? {});
  const positions = Object.entries(account?.positions ?? {});
  return (
    // tabIndex: the panel scrolls, so a keyboard must be able to reach it
    <section className="panel positions" aria-labelledby={`${id}-title`} tabIndex={0}>
      <div className="panel-head">
        <h2 id={`${id}-title`}>Account</h2>
        {account && (
          <span className={`badge state-${account.trading_state}`} data-testid="trading-state">
            {account.trading_state}
          </span>
        )}
      </div>
      {error && <p className="field-error">{error}</p>}
      <table aria-label="Balances">
        <thead>
          <tr>
            <th scope="col">Asset</th>
            <th scope="col" className="num">Total</th>
            <th scope="col" className="num">Available</th>
            <th scope="col" className="num">Reserved</th>
          </tr>
        </thead>
        <tbody>
          {balances.map(([asset, balance]) => (
            <tr key={asset} data-asset={asset}>
              <th scope="row">{asset}</th>
              <td className="num" data-testid={`balance-${asset}`}>{trimDecimal(balance.total)}</td>
              <td className="num">{trimDecimal(balance.available)}</td>
              <td className="num">{trimDecimal(balance.reserved)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table aria-label="Positions">
        <thead>
          <tr>
            <th scope="col">Symbol</th>
            <th scope="col" className="num">Quantity</th>
            <th scope="col" className="num">Avg price</th>
            <th scope="col" className="num">Realized</th>
            <th scope="col" className="num">Unrealized</th>
          </tr>
        </thead>
        <tbody>
          {positions.length === 0 && (
            <tr>
              <td colSpan={5} className="empty">
                No positions
              </td>
            </tr>
          )}
          {positions.map(([symbol, position]) => (
            <tr key={symbol} data-symbol={symbol}>
              <th scope="row">{symbol}</th>
              <td className="num" data-testid={`position-${symbol}`}>{trimDecimal(position.quantity)}</td>
              <td className="num">{trimDecimal(position.average_price, 2)}</td>
              <td className={`num pnl ${sign(position.realized_pnl)}`}>{trimDecimal(position.realized_pnl, 2)}</td>
              <td className={`num pnl ${sign(position.unrealized_pnl)}`}>{trimDecimal(position.unrealized_pnl, 2)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {account && (
        <dl className="pnl-totals">
          <dt>Realized PnL</dt>
          <dd className={sign(account.pnl.realized)}>{trimDecimal(account.pnl.realized, 2)}</dd>
          <dt>Unrealized PnL</dt>
          <dd className={sign(account.pnl.unrealized)}>{trimDecimal(account.pnl.unrealized, 2)}</dd>
          <dt>Total PnL</dt>
          <dd className={sign(account.pnl.total)}>{trimDecimal(account.pnl.total, 2)}</dd>
        </dl>
      )}
    </section>
  );
}

function sign(value: string): string {
  return value.startsWith('-') ? 'down' : /[1-9]/.test(value) ? 'up' : '';
}
