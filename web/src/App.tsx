import { useCallback, useEffect, useMemo, useState } from 'react';
import { DeskContext, type Desk } from './context';
import { Api, ApiError, BASE_CAPABILITIES, capabilitiesOf } from './services/api';
import { clearSession, loadSession, saveSession, type Session } from './services/session';
import { Login } from './components/Login';
import { Screen } from './Screen';

export type Theme = 'dark' | 'light';

function initialTheme(): Theme {
  const saved = localStorage.getItem('oms.theme');
  if (saved === 'dark' || saved === 'light') return saved;
  return window.matchMedia?.('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
}

/** Logged out: the login. Logged in: the server's capabilities and instruments, then the desk. */
export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [theme, setTheme] = useState<Theme>(initialTheme);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('oms.theme', theme);
  }, [theme]);

  const login = (next: Session) => {
    saveSession(next);
    setSession(next);
  };
  const logout = useCallback(() => {
    clearSession();
    setSession(null);
  }, []);

  if (session === null) return <Login onLogin={login} />;
  return (
    <Loaded
      key={`${session.key}/${session.accountId}`}
      session={session}
      theme={theme}
      onTheme={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
      onLogout={logout}
    />
  );
}

function Loaded({ session, theme, onTheme, onLogout }: { session: Session; theme: Theme; onTheme: () => void; onLogout: () => void }) {
  const api = useMemo(() => new Api(session.key), [session.key]);
  const [desk, setDesk] = useState<Desk | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let alive = true;
    Promise.all([api.openapi().then(capabilitiesOf, () => BASE_CAPABILITIES), api.instruments(), api.me()]).then(
      ([capabilities, instruments, me]) => alive && setDesk({ api, accountId: session.accountId, capabilities, instruments, me }),
      (failure: unknown) => {
        if (!alive) return;
        if (failure instanceof ApiError && failure.status === 401) onLogout(); // the key was revoked
        else setError(failure instanceof ApiError ? failure.message : 'The server cannot be reached.');
      },
    );
    return () => {
      alive = false;
    };
  }, [api, session.accountId, onLogout]);

  if (desk === null)
    return (
      <main className="loading" aria-busy={error === null}>
        {error ?? 'Loading…'}
      </main>
    );
  return (
    <DeskContext.Provider value={desk}>
      <Screen theme={theme} onTheme={onTheme} onLogout={onLogout} />
    </DeskContext.Provider>
  );
}
