import { useEffect, useRef, useState } from 'react';
import { useDesk } from '../context';
import { LiveSocket, type LiveState } from '../services/websocket';

/** A live stream for as long as the component is mounted (reconnects, resubscribes). */
export function useWebSocket(
  path: string,
  query: Record<string, string>,
  onMessage: (message: unknown) => void,
): LiveState {
  const { api, capabilities } = useDesk();
  const [state, setState] = useState<LiveState>('connecting');
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const queryKey = JSON.stringify(query);

  useEffect(() => {
    const live = new LiveSocket({
      path,
      query: JSON.parse(queryKey) as Record<string, string>,
      onMessage: (message) => handler.current(message),
      onState: setState,
      ticket: capabilities.wsTicket ? () => api.wsTicket() : undefined,
    });
    live.start();
    return () => live.stop();
  }, [api, capabilities.wsTicket, path, queryKey]);

  return state;
}
