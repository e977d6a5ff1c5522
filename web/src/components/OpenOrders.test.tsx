import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fakeApi, order, problem, renderWithDesk } from '../test/desk';
import { OpenOrders } from './OpenOrders';

const api = fakeApi(() => problem(500, 'UNUSED'));

it('test_cancel_when_clicked_then_cancels_that_order', async () => {
  const cancel = vi.fn(async () => undefined);
  renderWithDesk(<OpenOrders open={[order({ order_id: 'O1' }), order({ order_id: 'O2' })]} cancel={cancel} amend={vi.fn()} />, api);

  await userEvent.click(screen.getByRole('button', { name: 'Cancel order O2' }));

  expect(cancel).toHaveBeenCalledWith('O2');
});

it('test_cancel_when_refused_then_the_reason_code_is_shown', async () => {
  const refused = await fakeApi(() => problem(409, 'ORDER_TERMINAL')).cancelOrder('O1').catch((e: unknown) => e);
  renderWithDesk(<OpenOrders open={[order()]} cancel={() => Promise.reject(refused)} amend={vi.fn()} />, api);

  await userEvent.click(screen.getByRole('button', { name: 'Cancel order O1' }));

  expect(await screen.findByText(/ORDER_TERMINAL/)).toBeInTheDocument();
});

it('test_amend_when_server_has_no_patch_then_not_offered', () => {
  renderWithDesk(<OpenOrders open={[order()]} cancel={vi.fn()} amend={vi.fn()} />, api, { amend: false });

  expect(screen.queryByRole('button', { name: /^Amend/ })).toBeNull();
});

it('test_amend_when_server_has_patch_then_sends_only_what_changed', async () => {
  const amend = vi.fn(async () => undefined);
  renderWithDesk(<OpenOrders open={[order({ price: '59000.00', quantity: '0.01' })]} cancel={vi.fn()} amend={amend} />, api, { amend: true });

  await userEvent.click(screen.getByRole('button', { name: 'Amend order O1' }));
  const price = screen.getByLabelText('Price');
  await userEvent.clear(price);
  await userEvent.type(price, '59100.00');
  await userEvent.click(screen.getByRole('button', { name: 'Send amend' }));

  await waitFor(() => expect(amend).toHaveBeenCalledWith('O1', { price: '59100.00' }));
});

it('test_table_when_no_orders_then_says_so', () => {
  renderWithDesk(<OpenOrders open={[]} cancel={vi.fn()} amend={vi.fn()} />, api);

  expect(screen.getByText('No open orders')).toBeInTheDocument();
});
