// The typed client of the oms REST API. Types come from `schema.d.ts`, generated from the
// server's `/api/openapi.json` by openapi-typescript (`make web-types`; a test fails on drift).
import type { components, paths } from './schema';

type Schemas = components['schemas'];
export type Order = Schemas['Order'];
export type OrderPage = Schemas['OrderPage'];
export type OrderStatus = Order['status'];
export type Account = Schemas['Account'];
export type Instrument = Schemas['Instrument'];
export type OrderBook = Schemas['OrderBook'];
export type BookLevel = Schemas['BookLevel'];
export type OrderHistory = Schemas['OrderHistory'];
export type OrderEvent = Schemas['OrderEvent'] & Record<string, unknown>;
export type KillSwitch = Schemas['KillSwitch'];
export type TradingState = KillSwitch['state'];
export type Problem = Schemas['Problem'];
export type FieldError = NonNullable<Problem['errors']>[number];
export type OrderQuery = NonNullable<paths['/api/orders']['get']['parameters']['query']>;
/** What the order form sends: the schema's order, widened to the types and fields the running
 * server's document lists (stops, GTD, post-only arrive with the order-types work). */
export type OrderEntry = Omit<Schemas['PlaceOrder'], 'type' | 'time_in_force'> & {
  type: string;
  time_in_force?: string;
  stop_price?: string;
  expire_at?: string;
  post_only?: boolean;
};
export type Amend = { price?: string; quantity?: string };
/** Who the key is (GET /api/me): its role and the accounts it may act for. */
export type Me = paths['/api/me']['get']['responses'][200]['content']['application/json'];

export const OPEN_STATUSES: readonly OrderStatus[] = ['NEW', 'ACCEPTED', 'PARTIALLY_FILLED'];

/** An answer other than 2xx: the server's problem+json when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | null,
  ) {
    super(problem ? `${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = 'ApiError';
  }

  /** The server's messages per field (validation problems), empty for other problems. */
  fieldErrors(): Record<string, string> {
    const byField: Record<string, string> = {};
    for (const error of this.problem?.errors ?? []) {
      byField[error.field] = byField[error.field]
        ? `${byField[error.field]}; ${error.message}`
        : error.message;
    }
    return byField;
  }

  get code(): string {
    return this.problem?.code ?? `HTTP_${this.status}`;
  }
}

type Fetch = typeof fetch;

/** One caller's view of the API: every call carries `Authorization: Bearer <key>`. */
export class Api {
  constructor(
    private readonly key: string,
    private readonly base = '',
    private readonly fetchImpl: Fetch = (...args) => fetch(...args),
  ) {}

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const response = await this.fetchImpl(this.base + path, {
      method,
      headers: {
        Accept: 'application/json, application/problem+json',
        Authorization: `Bearer ${this.key}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get('Content-Type') ?? '';
    const parsed: unknown = type.includes('json') ? await response.json() : null;
    if (!response.ok) {
      throw new ApiError(response.status, type.includes('problem+json') ? (parsed as Problem) : null);
    }
    return parsed as T;
  }

  instruments(): Promise<Instrument[]> {
    return this.call('GET', '/api/instruments');
  }

  account(accountId: string): Promise<Account> {
    return this.call('GET', `/api/accounts/${encodeURIComponent(accountId)}`);
  }

  orders(query: OrderQuery): Promise<OrderPage> {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') params.set(name, String(value));
    }
    return this.call('GET', `/api/orders?${params.toString()}`);
  }

  orderEvents(orderId: string): Promise<OrderHistory> {
    return this.call('GET', `/api/orders/${encodeURIComponent(orderId)}/events`);
  }

  /** Place an order; the idempotency key makes a retry of the same click the same order. */
  placeOrder(order: OrderEntry, idempotencyKey: string): Promise<Order> {
    return this.call('POST', '/api/orders', order, { 'Idempotency-Key': idempotencyKey });
  }

  cancelOrder(orderId: string): Promise<unknown> {
    return this.call('DELETE', `/api/orders/${encodeURIComponent(orderId)}`);
  }

  amendOrder(orderId: string, amend: Amend): Promise<unknown> {
    return this.call('PATCH', `/api/orders/${encodeURIComponent(orderId)}`, amend);
  }

  orderBook(symbol: string, depth = 10): Promise<OrderBook> {
    return this.call('GET', `/api/market-data/orderbook/${encodeURIComponent(symbol)}?depth=${depth}`);
  }

  setKillSwitch(change: KillSwitch): Promise<KillSwitch> {
    return this.call('POST', '/api/risk/kill-switch', change);
  }

  /** A single-use ticket for one WebSocket (browsers cannot set headers on a WebSocket). */
  async wsTicket(): Promise<string> {
    const answer = await this.call<{ ticket: string }>('POST', '/api/ws-ticket');
    return answer.ticket;
  }

  /** The key's role and accounts; null from a server without identities (every key passes). */
  async me(): Promise<Me | null> {
    try {
      return await this.call<Me>('GET', '/api/me');
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 404) return null;
      throw failure;
    }
  }

  openapi(): Promise<OpenApiDocument> {
    return this.call('GET', '/api/openapi.json');
  }
}

export type OpenApiDocument = {
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, JsonSchema> };
};
type JsonSchema = { properties?: Record<string, { enum?: unknown[] }> };

/** What the running server offers beyond what this build was typed against. */
export type Capabilities = {
  orderTypes: string[];
  timesInForce: string[];
  orderFields: string[];
  amend: boolean;
  wsTicket: boolean;
  /** every order status the server may answer (EXPIRED arrives with GTD) */
  statuses: string[];
};

export const BASE_CAPABILITIES: Capabilities = {
  orderTypes: ['LIMIT', 'MARKET'],
  timesInForce: ['GTC', 'IOC', 'FOK'],
  orderFields: ['account_id', 'symbol', 'side', 'type', 'quantity', 'price', 'time_in_force'],
  amend: false,
  wsTicket: false,
  statuses: ['NEW', 'ACCEPTED', 'PARTIALLY_FILLED', 'FILLED', 'SETTLED', 'REJECTED', 'CANCELLED'],
};

/** Read the capabilities from the server's own OpenAPI document. */
export function capabilitiesOf(document: OpenApiDocument): Capabilities {
  const place = document.components?.schemas?.PlaceOrder?.properties ?? {};
  const order = document.components?.schemas?.Order?.properties ?? {};
  const strings = (values: unknown[] | undefined, fallback: string[]): string[] =>
    values ? values.filter((v): v is string => typeof v === 'string') : fallback;
  return {
    orderTypes: strings(place.type?.enum, BASE_CAPABILITIES.orderTypes),
    timesInForce: strings(place.time_in_force?.enum, BASE_CAPABILITIES.timesInForce),
    orderFields: Object.keys(place).length ? Object.keys(place) : BASE_CAPABILITIES.orderFields,
    amend: 'patch' in (document.paths['/api/orders/{order_id}'] ?? {}),
    wsTicket: '/api/ws-ticket' in document.paths,
    statuses: strings(order.status?.enum, BASE_CAPABILITIES.statuses),
  };
}
