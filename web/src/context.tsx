import { createContext, useContext } from 'react';
import type { Api, Capabilities, Instrument, Me } from './services/api';

/** What every panel of a logged-in screen shares. */
export type Desk = {
  api: Api;
  accountId: string;
  capabilities: Capabilities;
  instruments: Instrument[];
  /** the key's role and accounts; null when the server has no identities */
  me: Me | null;
};

export const DeskContext = createContext<Desk | null>(null);

export function useDesk(): Desk {
  const desk = useContext(DeskContext);
  if (desk === null) throw new Error('useDesk outside a DeskContext');
  return desk;
}
