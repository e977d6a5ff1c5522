import { clearSession, loadSession, saveSession } from './session';

beforeEach(() => sessionStorage.clear());

it('test_session_when_saved_then_loaded_from_session_storage_not_local', () => {
  saveSession({ key: 'k', accountId: 'alice' });

  expect(loadSession()).toEqual({ key: 'k', accountId: 'alice' });
  expect(localStorage.length).toBe(0);
});

it('test_session_when_cleared_then_logged_out', () => {
  saveSession({ key: 'k', accountId: 'alice' });
  clearSession();

  expect(loadSession()).toBeNull();
});

it('test_session_when_entry_damaged_then_logged_out', () => {
  sessionStorage.setItem('oms.session', '{not json');

  expect(loadSession()).toBeNull();
});
