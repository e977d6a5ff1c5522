import { act, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { DeskContext } from '../context';
import { BASE_CAPABILITIES } from '../services/api';
import { FakeSocket, INSTRUMENTS, fakeApi, json, order } from '../test/desk';
import { applyEvent, useOrders } from './useOrders';

beforeEach(() => {
  FakeSocket.made = [];
  vi.stubGlobal('WebSocket', FakeSocket);
});
afterEach(() => vi.unstubAllGlobals());

it('test_apply_event_when_rejected_then_status_and_reason_move', () => {
  const orders = new Map([['O1', order({ status: 'NEW' })]]);

  const next = applyEvent(orders, {
    type: 'order_event',
    account_id: 'alice',
    order_id: 'O1',
    status: 'REJECTED',
    event: { type: 'OrderRejected', reason: 'KILL_SWITCH_ACCOUNT' },
  });

  expect(next.get('O1')).toMatchObject({ status: 'REJECTED', reject_reason: 'KILL_SWITCH_ACCOUNT' });
  expect(orders.get('O1')!.status).toBe('NEW');
});

it('test_apply_event_when_an_older_read_comes_back_after_a_cancel_then_the_cancel_stays', () => {
  const orders = new Map([['O1', order({ status: 'ACCEPTED', version: 3 })]]);

  const next = applyEvent(orders, {
    type: 'order_event',
    account_id: 'alice',
    order_id: 'O1',
    status: 'CANCELLED',
    event: { type: 'OrderCancelled', sequence: 4 },
  });

  // the merge of a read keeps the order whose version is higher: the cancel's, not the read's 3
  expect(next.get('O1')).toMatchObject({ status: 'CANCELLED', version: 4 });
});

it('test_use_orders_when_live_events_arrive_then_open_orders_follow', async () => {
  const api = fakeApi(() => json({ items: [order({ order_id: 'O1', status: 'ACCEPTED' })], next_cursor: null }));
  const wrapper = ({ children }: { children: ReactNode }) => (
    <DeskContext.Provider value={{ api, accountId: 'alice', capabilities: BASE_CAPABILITIES, instruments: INSTRUMENTS, me: null }}>{children}</DeskContext.Provider>
  );
  const { result } = renderHook(() => useOrders(), { wrapper });
  await waitFor(() => expect(result.current.open.map((o) => o.order_id)).toEqual(['O1']));
  await waitFor(() => expect(FakeSocket.made.length).toBeGreaterThan(0));
  const socket = FakeSocket.made.at(-1)!;
  expect(new URL(socket.url).searchParams.get('account_id')).toBe('alice');

  act(() => {
    socket.open();
    socket.receive({ type: 'order_event', account_id: 'alice', order_id: 'O1', status: 'CANCELLED', event: { type: 'OrderCancelled' } });
  });

  expect(result.current.open).toEqual([]);
  expect(result.current.orders[0]!.status).toBe('CANCELLED');
  expect(result.current.version).toBe(1);
  expect(result.current.live).toBe('open');
});

it('test_use_orders_when_server_takes_tickets_then_the_socket_opens_with_a_fresh_one', async () => {
  let tickets = 0;
  const api = fakeApi((method, path) =>
    method === 'POST' && path === '/api/ws-ticket'
      ? json({ ticket: `t${++tickets}`, expires_in_s: 30 })
      : json({ items: [], next_cursor: null }),
  );
  const wrapper = ({ children }: { children: ReactNode }) => (
    <DeskContext.Provider value={{ api, accountId: 'alice', capabilities: { ...BASE_CAPABILITIES, wsTicket: true }, instruments: INSTRUMENTS, me: null }}>
      {children}
    </DeskContext.Provider>
  );

  renderHook(() => useOrders(), { wrapper });

  await waitFor(() => expect(FakeSocket.made.length).toBeGreaterThan(0));
  const url = new URL(FakeSocket.made.at(-1)!.url);
  expect(url.pathname).toBe('/ws/orders');
  expect(url.searchParams.get('ticket')).toMatch(/^t\d+$/);
  expect(url.searchParams.get('account_id')).toBe('alice');
});
