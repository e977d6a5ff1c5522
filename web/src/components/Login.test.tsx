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
