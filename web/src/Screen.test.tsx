import { render, screen, waitFor } from '@testing-library/react';
import { DeskContext, type Desk } from './context';
import { BASE_CAPABILITIES, type Me } from './services/api';
import { FakeSocket, INSTRUMENTS, fakeApi, json } from './test/desk';
import { Screen } from './Screen';

// The chart draws on a canvas jsdom does not have; the browser story covers it.
vi.mock('./components/PriceChart', () => ({ PriceChart: () => null }));

const ACCOUNT = {
  account_id: 'alice',
  trading_state: 'HALTED',
  balances: { USD: { total: '1000', available: '900', reserved: '100' } },
  reservations: {},
  positions: { 'BTC-USD': { quantity: '0.5', average_price: '60000', realized_pnl: '0', unrealized_pnl: '-2.5' } },
  pnl: { realized: '0', unrealized: '-2.5', total: '-2.5' },
  limits: {},
};

function renderScreen(me: Me | null) {
  vi.stubGlobal('WebSocket', FakeSocket);
  const api = fakeApi((_m, path) => {
    if (path.startsWith('/api/accounts/')) return json(ACCOUNT);
    if (path.startsWith('/api/orders')) return json({ items: [], next_cursor: null });
    return json({ symbol: 'BTC-USD', last_price: '60000', best_bid: null, best_ask: null, time: '2026-12-06T01:00:00Z', bids: [], asks: [] });
  });
  const desk: Desk = { api, accountId: 'alice', capabilities: BASE_CAPABILITIES, instruments: INSTRUMENTS, me };
  return render(
    <DeskContext.Provider value={desk}>
      <Screen theme="dark" onTheme={vi.fn()} onLogout={vi.fn()} />
    </DeskContext.Provider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

it('test_screen_when_trader_key_then_no_kill_switch', async () => {
  renderScreen({ role: 'trader', accounts: ['alice'], key_id: 'k', subject: null });

  await waitFor(() => expect(screen.getByTestId('trading-state')).toHaveTextContent('HALTED'));
  expect(screen.queryByRole('heading', { name: 'Kill switch' })).toBeNull();
  expect(screen.getByText('trader key')).toBeInTheDocument();
});

it('test_screen_when_risk_key_then_kill_switch_shows_the_accounts_state', async () => {
  renderScreen({ role: 'risk', accounts: ['alice'], key_id: 'k', subject: null });

  await waitFor(() => expect(screen.getByRole('button', { name: 'Halt' })).toHaveAttribute('aria-pressed', 'true'));
  expect(screen.getByRole('heading', { name: 'Kill switch' })).toBeInTheDocument();
});

it('test_screen_when_account_read_then_balances_positions_and_pnl_show', async () => {
  renderScreen(null);

  await waitFor(() => expect(screen.getByTestId('balance-USD')).toHaveTextContent('1000'));
  expect(screen.getByTestId('position-BTC-USD')).toHaveTextContent('0.5');
  expect(screen.getAllByText('-2.5').length).toBeGreaterThan(0);
});
