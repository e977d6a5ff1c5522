import { FakeSocket } from '../test/desk';
import { LiveSocket, backoffDelay, socketUrl } from './websocket';

describe('LiveSocket', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.made = [];
  });
  afterEach(() => vi.useRealTimers());

  function live(ticket?: () => Promise<string | null>) {
    const messages: unknown[] = [];
    const states: string[] = [];
    const socket = new LiveSocket({
      path: '/ws/orders',
      query: { account_id: 'alice' },
      onMessage: (m) => messages.push(m),
      onState: (s) => states.push(s),
      ticket,
      initialDelayMs: 100,
      maxDelayMs: 400,
      origin: 'http://127.0.0.1:8080',
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    });
    return { socket, messages, states };
  }

  it('test_drop_when_connected_then_reconnects_with_backoff_and_resubscribes', async () => {
    const { socket, messages } = live();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.made[0]!.open();
    FakeSocket.made[0]!.receive({ type: 'subscribed' });

    FakeSocket.made[0]!.drop();
    await vi.advanceTimersByTimeAsync(99);
    expect(FakeSocket.made).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);

    expect(FakeSocket.made).toHaveLength(2);
    expect(FakeSocket.made[1]!.url).toBe('ws://127.0.0.1:8080/ws/orders?account_id=alice');
    expect(messages).toEqual([{ type: 'subscribed' }]);
    socket.stop();
  });

  it('test_drops_when_repeated_then_delay_doubles_to_the_cap_and_resets_on_open', async () => {
    const { socket } = live();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    for (const wait of [100, 200, 400, 400]) {
      FakeSocket.made.at(-1)!.drop();
      const before = FakeSocket.made.length;
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(FakeSocket.made).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(FakeSocket.made).toHaveLength(before + 1);
    }
    FakeSocket.made.at(-1)!.open();
    FakeSocket.made.at(-1)!.drop();
    await vi.advanceTimersByTimeAsync(100);
    expect(FakeSocket.made).toHaveLength(6);
    socket.stop();
  });

  it('test_reconnect_when_tickets_are_used_then_each_connection_takes_a_new_one', async () => {
    let n = 0;
    const { socket } = live(async () => `t${++n}`);
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.made[0]!.drop();
    await vi.advanceTimersByTimeAsync(100);

    expect(FakeSocket.made.map((s) => new URL(s.url).searchParams.get('ticket'))).toEqual(['t1', 't2']);
    expect(new URL(FakeSocket.made[1]!.url).searchParams.get('account_id')).toBe('alice');
    socket.stop();
  });

  it('test_stop_when_called_then_closes_and_never_reconnects', async () => {
    const { socket, states } = live();
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    const first = FakeSocket.made[0]!;

    socket.stop();
    first.drop();
    await vi.advanceTimersByTimeAsync(10_000);

    expect(first.closed).toBe(true);
    expect(FakeSocket.made).toHaveLength(1);
    expect(states.at(-1)).toBe('closed');
  });

  it('test_ticket_when_refused_then_retries_later', async () => {
    let calls = 0;
    const { socket } = live(async () => {
      calls += 1;
      if (calls === 1) throw new Error('503');
      return 'ok';
    });
    socket.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.made).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(100);

    expect(FakeSocket.made).toHaveLength(1);
    socket.stop();
  });
});

it('test_backoff_when_attempts_grow_then_doubles_up_to_the_cap', () => {
  expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, 250, 5000))).toEqual([250, 500, 1000, 2000, 5000]);
});

it('test_socket_url_when_page_is_https_then_wss', () => {
  expect(socketUrl('https://oms.example', '/ws/market-data', { symbols: 'BTC-USD' })).toBe(
    'wss://oms.example/ws/market-data?symbols=BTC-USD',
  );
});
