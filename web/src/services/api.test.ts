import { fakeApi, json, problem } from '../test/desk';
import { ApiError, BASE_CAPABILITIES, capabilitiesOf, type OpenApiDocument } from './api';

it('test_call_when_made_then_sends_the_key_as_bearer_and_the_idempotency_key', async () => {
  const seen: Headers[] = [];
  const api = new (await import('./api')).Api('k-123', '', async (_input, init) => {
    seen.push(new Headers(init?.headers));
    return json({ order_id: 'O1' }, 202);
  });

  await api.placeOrder({ account_id: 'alice', symbol: 'BTC-USD', side: 'BUY', type: 'MARKET', quantity: '1' }, 'idem-1');

  expect(seen[0]!.get('Authorization')).toBe('Bearer k-123');
  expect(seen[0]!.get('Idempotency-Key')).toBe('idem-1');
});

it('test_call_when_problem_json_then_api_error_with_code_and_field_errors', async () => {
  const api = fakeApi(() =>
    problem(422, 'INVALID_ORDER', [
      { field: 'quantity', message: 'must be positive' },
      { field: 'quantity', message: 'must be a multiple of 0.0001' },
    ]),
  );

  const failure = await api.orders({ account_id: 'alice' }).catch((e: unknown) => e);

  expect(failure).toBeInstanceOf(ApiError);
  expect((failure as ApiError).code).toBe('INVALID_ORDER');
  expect((failure as ApiError).fieldErrors()).toEqual({ quantity: 'must be positive; must be a multiple of 0.0001' });
});

it('test_orders_when_filters_blank_then_left_out_of_the_query', async () => {
  const paths: string[] = [];
  const api = fakeApi((_m, path) => {
    paths.push(path);
    return json({ items: [], next_cursor: null });
  });

  await api.orders({ account_id: 'alice', symbol: undefined, status: 'SETTLED', limit: 20, cursor: 'abc' });

  expect(paths).toEqual(['/api/orders?account_id=alice&status=SETTLED&limit=20&cursor=abc']);
});

it('test_capabilities_when_document_has_patch_stops_and_tickets_then_offered', () => {
  const document: OpenApiDocument = {
    paths: { '/api/orders/{order_id}': { get: {}, delete: {}, patch: {} }, '/api/ws-ticket': { post: {} } },
    components: {
      schemas: {
        PlaceOrder: {
          properties: {
            type: { enum: ['MARKET', 'LIMIT', 'STOP_MARKET', 'STOP_LIMIT'] },
            time_in_force: { enum: ['GTC', 'IOC', 'FOK', 'GTD'] },
            stop_price: {},
            post_only: {},
          },
        },
        Order: { properties: { status: { enum: ['NEW', 'ACCEPTED', 'EXPIRED'] } } },
      },
    },
  };

  const capabilities = capabilitiesOf(document);

  expect(capabilities.amend).toBe(true);
  expect(capabilities.wsTicket).toBe(true);
  expect(capabilities.orderTypes).toContain('STOP_LIMIT');
  expect(capabilities.timesInForce).toContain('GTD');
  expect(capabilities.orderFields).toContain('post_only');
  expect(capabilities.statuses).toContain('EXPIRED');
});

it('test_capabilities_when_document_is_todays_then_no_amend_and_no_ticket', async () => {
  const committed = (await import('../../openapi.json')).default as unknown as OpenApiDocument;

  const capabilities = capabilitiesOf(committed);

  expect(capabilities.orderTypes).toEqual(expect.arrayContaining(BASE_CAPABILITIES.orderTypes));
  expect(capabilities.amend).toBe('patch' in (committed.paths['/api/orders/{order_id}'] ?? {}));
});
