import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fakeApi, json, problem, renderWithDesk } from '../test/desk';
import { KillSwitch } from './KillSwitch';

it('test_halt_when_risk_key_then_posts_the_accounts_switch', async () => {
  const bodies: unknown[] = [];
  const onChanged = vi.fn();
  const api = fakeApi((_m, _p, body) => {
    bodies.push(body);
    return json({ state: 'HALTED', account_id: 'alice' });
  });
  renderWithDesk(<KillSwitch current="ACTIVE" onChanged={onChanged} />, api);

  await userEvent.click(screen.getByRole('button', { name: 'Halt' }));

  await waitFor(() => expect(onChanged).toHaveBeenCalled());
  expect(bodies).toEqual([{ state: 'HALTED', account_id: 'alice' }]);
});

it('test_halt_when_trader_key_then_refused_and_disabled', async () => {
  renderWithDesk(<KillSwitch current="ACTIVE" onChanged={vi.fn()} />, fakeApi(() => problem(403, 'FORBIDDEN')));

  await userEvent.click(screen.getByRole('button', { name: 'Halt' }));

  expect(await screen.findByText('Only a risk or admin key may use the kill switch.')).toBeInTheDocument();
  expect(screen.getByRole('button', { name: 'Halt' })).toBeDisabled();
});
