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
      await makeApi(key.trim()).account(accountId.trim());
      onLogin({ key: key.trim(), accountId: accountId.trim() });
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) setError('This API key is not valid.');
      else if (failure instanceof ApiError && (failure.status === 403 || failure.status === 404))
        setError(`This key may not trade account ${accountId.trim()}, or it does not exist.`);
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
        <input id="login-account" required value={accountId} onChange={(e) => setAccountId(e.target.value)} />
        <p className="field-error" role="alert">{error ?? '\u00a0'}</p>
        <button type="submit" className="primary" disabled={busy}>
          Log in
        </button>
        <p className="hint">The key is kept in this tab's session storage only.</p>
      </form>
    </main>
  );
}
