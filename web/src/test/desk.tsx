import { render, type RenderResult } from '@testing-library/react';
import type { ReactElement } from 'react';
import { DeskContext, type Desk } from '../context';
import { Api, BASE_CAPABILITIES, type Capabilities, type Order } from '../services/api';

export const INSTRUMENTS = [
  { symbol: 'BTC-USD', base: 'BTC', quote: 'USD', tick_size: '0.01', lot_size: '0.0001', status: 'TRADING' as const },
  { symbol: 'ETH-USD', base: 'ETH', quote: 'USD', tick_size: '0.01', lot_size: '0.001', status: 'TRADING' as const },
];

/** An Api whose fetch is `answer` (a test decides every reply). */
export function fakeApi(answer: (method: string, path: string, body: unknown) => Response | Promise<Response>): Api {
  return new Api('test-key', '', async (input, init) =>
    answer(init?.method ?? 'GET', String(input), init?.body ? JSON.parse(String(init.body)) : undefined),
  );
}

export function json(body: unknown, status = 200, type = 'application/json'): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } });
}

export function problem(status: number, code: string, errors?: { field: string; message: string }[]): Response {
  return json(
    { type: `https://oms.example/problems/${code.toLowerCase()}`, title: code, status, detail: code, code, ...(errors ? { errors } : {}) },
    status,
    'application/problem+json',
  );
}

export function renderWithDesk(ui: ReactElement, api: Api, capabilities: Partial<Capabilities> = {}): RenderResult {
  const desk: Desk = { api, accountId: 'alice', capabilities: { ...BASE_CAPABILITIES, ...capabilities }, instruments: INSTRUMENTS, me: null };
  // a wrapper, not a parent element: `rerender` keeps the context
  return render(ui, { wrapper: ({ children }) => <DeskContext.Provider value={desk}>{children}</DeskContext.Provider> });
}

export function order(fields: Partial<Order> = {}): Order {
  return {
    order_id: 'O1',
    client_order_id: 'c1',
    account_id: 'alice',
    symbol: 'BTC-USD',
    side: 'BUY',
    type: 'LIMIT',
    quantity: '0.01',
    price: '59000.00',
    time_in_force: 'GTC',
    status: 'ACCEPTED',
    filled_quantity: '0',
    average_fill_price: null,
    reject_reason: null,
    created_at: '2026-12-06T01:00:00Z',
    updated_at: '2026-12-06T01:00:00Z',
    version: 2,
    ...fields,
  } as Order;
}

/** A WebSocket double: the test opens, sends to and closes each instance. */
export class FakeSocket {
  static made: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.made.push(this);
  }
  open(): void {
    this.onopen?.();
  }
  receive(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(): void {
    this.onclose?.();
  }
  close(): void {
    this.closed = true;
  }
}
