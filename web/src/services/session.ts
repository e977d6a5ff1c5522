// The login: an API key and the account it trades, kept in sessionStorage (gone with the tab,
// never in a URL or in localStorage, which outlives the session).
export type Session = { key: string; accountId: string };

const STORAGE_KEY = 'oms.session';

export function loadSession(storage: Storage = sessionStorage): Session | null {
  const raw = storage.getItem(STORAGE_KEY);
  if (!raw) return null;
  try {
    const value = JSON.parse(raw) as Partial<Session>;
    return typeof value.key === 'string' && typeof value.accountId === 'string'
      ? { key: value.key, accountId: value.accountId }
      : null;
  } catch {
    return null; // a damaged entry is a logged-out session
  }
}

export function saveSession(session: Session, storage: Storage = sessionStorage): void {
  storage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(storage: Storage = sessionStorage): void {
  storage.removeItem(STORAGE_KEY);
}
