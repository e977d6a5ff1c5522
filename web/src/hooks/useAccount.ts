import { useEffect, useState } from 'react';
import { useDesk } from '../context';
import { ApiError, type Account } from '../services/api';

const REFRESH_MS = 2000; // PnL moves with the price, not only with this account's orders

/** The account's balances, reservations, positions and PnL: read again on every order event
 * (`version`) and every two seconds. */
export function useAccount(version: number): { account: Account | null; error: string | null } {
  const { api, accountId } = useDesk();
  const [account, setAccount] = useState<Account | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let alive = true;
    const read = () =>
      api.account(accountId).then(
        (value) => alive && (setAccount(value), setError(null)),
        (failure: unknown) => alive && setError(failure instanceof ApiError ? failure.message : 'server unreachable'),
      );
    void read();
    const timer = setInterval(() => void read(), REFRESH_MS);
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [api, accountId, version]);

  return { account, error };
}
