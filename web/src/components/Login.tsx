import { useState, type FormEvent } from 'react';
import { Api, ApiError } from '../services/api';
import type { Session } from '../services/session';

type Props = { onLogin: (session: Session) => void; makeApi?: (key: string) => Api };

/** Log in with an API key (`oms keys create`) and the account to trade; the key is checked by
 * reading the account with it before it is kept. */
export function Login({ onLogin, makeApi = (key) => new Api(key) }: Props) {
  const [key, setKey] = useState('');
  const [accountId, setAccountId] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const api = makeApi(key.trim());
      const me = await api.me();
      const chosen = accountId.trim() || (me?.accounts.length === 1 ? me.accounts[0]! : '');
      if (!chosen) {
        setError(me ? `This ${me.role} key may act for ${me.accounts.length ? me.accounts.join(', ') : 'every account'}: name one.` : 'Name the account.');
        return;
      }
      await api.account(chosen);
      onLogin({ key: key.trim(), accountId: chosen });
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) setError('This API key is not valid.');
      else if (failure instanceof ApiError && (failure.status === 403 || failure.status === 404))
        setError(`This key may not use account ${accountId.trim() || '(its own)'}, or it does not exist.`);
      else setError(failure instanceof ApiError ? failure.message : 'The server cannot be reached.');
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form className="panel login-form" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">oms — log in</h1>
        <label htmlFor="login-key">API key</label>
        <input id="login-key" type="password" autoComplete="off" required value={key} onChange={(e) => setKey(e.target.value)} />
        <label htmlFor="login-account">Account</label>
        <input id="login-account" aria-describedby="login-account-hint" value={accountId} onChange={(e) => setAccountId(e.target.value)} />
        <p className="hint" id="login-account-hint">
          Leave empty to use the key's own account.
        </p>
        <p className="field-error" role="alert">{error ?? '\u00a0'}</p>
        <button type="submit" className="primary" disabled={busy}>
          Log in
        </button>
        <p className="hint">The key is kept in this tab's session storage only.</p>
      </form>
    </main>
  );
}
