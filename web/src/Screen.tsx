import { useState } from 'react';
import type { Theme } from './App';
import { useDesk } from './context';
import { useAccount } from './hooks/useAccount';
import { useMarket } from './hooks/useMarket';
import { useOrders } from './hooks/useOrders';
import { KillSwitch } from './components/KillSwitch';
import { OpenOrders } from './components/OpenOrders';
import { OrderBook } from './components/OrderBook';
import { PositionTable } from './components/PositionTable';
import { PriceChart } from './components/PriceChart';
import { TradeForm } from './components/TradeForm';
import { TradeHistory } from './components/TradeHistory';

/** The trading screen: book and depth | chart, open orders, history | order entry, account. */
export function Screen({ theme, onTheme, onLogout }: { theme: Theme; onTheme: () => void; onLogout: () => void }) {
  const { accountId, instruments, me } = useDesk();
  // the kill switch is for risk and admin keys; without identities the server decides
  const mayHalt = me === null || me.role === 'risk' || me.role === 'admin';
  const [symbol, setSymbol] = useState(instruments[0]?.symbol ?? 'BTC-USD');
  const orders = useOrders();
  const market = useMarket(symbol);
  const [bump, setBump] = useState(0);
  const { account, error } = useAccount(orders.version + bump);

  return (
    <div className="desk">
      <header className="topbar">
        <span className="brand">oms</span>
        <span>
          Account <strong data-testid="account-id">{accountId}</strong>
        </span>
        {me && <span className="role">{me.role} key</span>}
        <span className={`live live-${orders.live}`} title="order events">
          orders {orders.live}
        </span>
        <span className="spacer" />
        <button type="button" onClick={onTheme} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
          {theme === 'dark' ? 'Light' : 'Dark'} theme
        </button>
        <button type="button" onClick={onLogout}>
          Log out
        </button>
      </header>
      <main className="grid">
        <div className="col col-book">
          <OrderBook symbol={symbol} book={market.book} live={market.live} />
        </div>
        <div className="col col-center">
          <PriceChart symbol={symbol} prices={market.prices} theme={theme} />
          <OpenOrders open={orders.open} cancel={orders.cancel} amend={orders.amend} />
          <TradeHistory version={orders.version} />
        </div>
        <div className="col col-entry">
          <TradeForm symbol={symbol} onSymbol={setSymbol} place={orders.place} orders={orders.orders} />
          <PositionTable account={account} error={error} />
          {mayHalt && <KillSwitch current={account?.trading_state ?? null} onChanged={() => setBump((b) => b + 1)} />}
        </div>
      </main>
    </div>
  );
}
