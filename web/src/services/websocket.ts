// A WebSocket that stays open: on a close it reconnects with exponential back-off (reset once
// a connection opens) and resubscribes by opening the same stream again. With the server's
// ticket scheme each connection takes a new single-use ticket (`ticket()`), because a ticket is
// spent by the connection that used it.

export type LiveState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export type LiveOptions = {
  /** `/ws/orders` or `/ws/market-data` */
  path: string;
  /** the subscription (account, symbols), sent again on every reconnect */
  query: Record<string, string>;
  onMessage: (message: unknown) => void;
  onState?: (state: LiveState) => void;
  /** a fresh ticket per connection; null when the server takes none */
  ticket?: () => Promise<string | null>;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** where the page is served from (tests give one) */
  origin?: string;
  WebSocketImpl?: typeof WebSocket;
};

export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** attempt);
}

export function socketUrl(origin: string, path: string, query: Record<string, string>): string {
  const url = new URL(path, origin);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url.toString();
}

export class LiveSocket {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(private readonly options: LiveOptions) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.close();
    this.socket = null;
    this.options.onState?.('closed');
  }

  private async connect(): Promise<void> {
    const { options } = this;
    options.onState?.(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let query = options.query;
    try {
      const ticket = options.ticket ? await options.ticket() : null;
      if (ticket !== null) query = { ...query, ticket };
    } catch {
      this.retry(); // no ticket (server away, key refused): try again later like a lost socket
      return;
    }
    if (this.stopped) return;
    const Impl = options.WebSocketImpl ?? WebSocket;
    const socket = new Impl(socketUrl(options.origin ?? window.location.origin, options.path, query));
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      options.onState?.('open');
    };
    socket.onmessage = (event: MessageEvent) => {
      try {
        options.onMessage(JSON.parse(String(event.data)) as unknown);
      } catch {
        // a frame that is not JSON is not ours to act on
      }
    };
    socket.onclose = () => {
      if (this.socket === socket) this.socket = null;
      if (!this.stopped) this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    const delay = backoffDelay(
      this.attempt,
      this.options.initialDelayMs ?? 250,
      this.options.maxDelayMs ?? 5000,
    );
    this.attempt += 1;
    this.options.onState?.('reconnecting');
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}
