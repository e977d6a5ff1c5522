import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fakeApi, json, problem } from '../test/desk';
import { Login } from './Login';

async function logIn(key: string) {
  await userEvent.type(screen.getByLabelText('API key'), key);
  await userEvent.type(screen.getByLabelText('Account'), 'alice');
  await userEvent.click(screen.getByRole('button', { name: 'Log in' }));
}

it('test_login_when_key_refused_then_says_so_and_stays', async () => {
  const onLogin = vi.fn();
  render(<Login onLogin={onLogin} makeApi={() => fakeApi(() => problem(401, 'UNAUTHENTICATED'))} />);

  await logIn('bad');

  expect(await screen.findByRole('alert')).toHaveTextContent('This API key is not valid.');
  expect(onLogin).not.toHaveBeenCalled();
});

it('test_login_when_key_reads_the_account_then_logs_in', async () => {
  const onLogin = vi.fn();
  render(<Login onLogin={onLogin} makeApi={() => fakeApi(() => json({ account_id: 'alice' }))} />);

  await logIn(' k-1 ');

  expect(onLogin).toHaveBeenCalledWith({ key: 'k-1', accountId: 'alice' });
});

it('test_key_field_when_typed_then_masked', () => {
  render(<Login onLogin={vi.fn()} />);

  expect(screen.getByLabelText('API key')).toHaveAttribute('type', 'password');
});

it('test_login_when_account_left_empty_and_key_has_one_then_uses_it', async () => {
  const onLogin = vi.fn();
  const api = fakeApi((_m, path) =>
    path === '/api/me' ? json({ role: 'trader', accounts: ['acct-7'], key_id: 'k', subject: null }) : json({ account_id: 'acct-7' }),
  );
  render(<Login onLogin={onLogin} makeApi={() => api} />);

  await userEvent.type(screen.getByLabelText('API key'), 'k-7');
  await userEvent.click(screen.getByRole('button', { name: 'Log in' }));

  expect(onLogin).toHaveBeenCalledWith({ key: 'k-7', accountId: 'acct-7' });
});

it('test_login_when_account_left_empty_and_key_has_all_then_asks_for_one', async () => {
  const api = fakeApi(() => json({ role: 'risk', accounts: [], key_id: 'k', subject: null }));
  render(<Login onLogin={vi.fn()} makeApi={() => api} />);

  await userEvent.type(screen.getByLabelText('API key'), 'k-risk');
  await userEvent.click(screen.getByRole('button', { name: 'Log in' }));

  expect(await screen.findByRole('alert')).toHaveTextContent('This risk key may act for every account: name one.');
});
