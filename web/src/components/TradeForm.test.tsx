import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ApiError, type OrderEntry } from '../services/api';
import { fakeApi, order, problem, renderWithDesk } from '../test/desk';
import { TradeForm } from './TradeForm';

const api = fakeApi(() => problem(500, 'UNUSED'));

it('test_submit_when_server_refuses_quantity_then_its_message_sits_next_to_the_field', async () => {
  const place = vi.fn(async () => {
    const refused = await fakeApi(() => problem(422, 'INVALID_ORDER', [{ field: 'quantity', message: 'must be greater than 0' }]))
      .orders({})
      .catch((e: unknown) => e as ApiError);
    throw refused;
  });
  renderWithDesk(<TradeForm symbol="BTC-USD" onSymbol={() => undefined} place={place} orders={[]} />, api);

  await userEvent.type(screen.getByLabelText(/^Quantity/), '-1');
  await userEvent.type(screen.getByLabelText(/^Limit price/), '100');
  await userEvent.click(screen.getByRole('button', { name: 'Buy BTC-USD' }));

  const quantity = screen.getByLabelText(/^Quantity/);
  await waitFor(() => expect(quantity).toHaveAttribute('aria-invalid', 'true'));
  expect(quantity).toHaveAccessibleDescription('must be greater than 0');
  expect(screen.getByLabelText(/^Limit price/)).not.toHaveAttribute('aria-invalid');
});

it('test_submit_when_limit_then_sends_the_order_with_price_and_shows_its_live_status', async () => {
  const sent: OrderEntry[] = [];
  const place = vi.fn(async (entry: OrderEntry) => {
    sent.push(entry);
    return order({ order_id: 'O9', status: 'NEW' });
  });
  const { rerender } = renderWithDesk(<TradeForm symbol="BTC-USD" onSymbol={() => undefined} place={place} orders={[]} />, api);

  await userEvent.click(screen.getByRole('radio', { name: 'Sell' }));
  await userEvent.type(screen.getByLabelText(/^Quantity/), '0.5');
  await userEvent.type(screen.getByLabelText(/^Limit price/), '61000.00{Enter}');
  await waitFor(() => expect(place).toHaveBeenCalled());
  rerender(
    <TradeForm symbol="BTC-USD" onSymbol={() => undefined} place={place} orders={[order({ order_id: 'O9', status: 'REJECTED', reject_reason: 'KILL_SWITCH_ACCOUNT' })]} />,
  );

  expect(sent).toEqual([
    { account_id: 'alice', symbol: 'BTC-USD', side: 'SELL', type: 'LIMIT', quantity: '0.5', price: '61000.00', time_in_force: 'GTC' },
  ]);
  expect(await screen.findByTestId('last-order-status')).toHaveTextContent('REJECTED');
  expect(screen.getByText(/KILL_SWITCH_ACCOUNT/)).toBeInTheDocument();
});

it('test_type_when_market_then_no_price_field_and_ioc', async () => {
  renderWithDesk(<TradeForm symbol="BTC-USD" onSymbol={() => undefined} place={vi.fn()} orders={[]} />, api);

  await userEvent.selectOptions(screen.getByLabelText('Type'), 'MARKET');

  expect(screen.queryByLabelText(/^Limit price/)).toBeNull();
  expect(screen.getByLabelText('Time in force')).toHaveValue('IOC');
});

it('test_form_when_server_lists_stops_gtd_and_post_only_then_offers_them', async () => {
  renderWithDesk(<TradeForm symbol="BTC-USD" onSymbol={() => undefined} place={vi.fn()} orders={[]} />, api, {
    orderTypes: ['MARKET', 'LIMIT', 'STOP_MARKET', 'STOP_LIMIT'],
    timesInForce: ['GTC', 'IOC', 'FOK', 'GTD'],
    orderFields: ['account_id', 'symbol', 'side', 'type', 'quantity', 'price', 'stop_price', 'time_in_force', 'expire_at', 'post_only'],
  });

  await userEvent.selectOptions(screen.getByLabelText('Type'), 'STOP_LIMIT');
  await userEvent.selectOptions(screen.getByLabelText('Time in force'), 'GTD');

  expect(screen.getByLabelText('Stop price')).toBeInTheDocument();
  expect(screen.getByLabelText(/^Limit price/)).toBeInTheDocument();
  expect(screen.getByLabelText('Expires at')).toBeInTheDocument();
  expect(screen.getByLabelText('Post only')).toBeInTheDocument();
});

it('test_side_when_arrow_key_pressed_then_moves_the_choice_and_focus', async () => {
  renderWithDesk(<TradeForm symbol="BTC-USD" onSymbol={() => undefined} place={vi.fn()} orders={[]} />, api);

  screen.getByRole('radio', { name: 'Buy' }).focus();
  await userEvent.keyboard('{ArrowRight}');

  expect(screen.getByRole('radio', { name: 'Sell' })).toHaveAttribute('aria-checked', 'true');
  expect(screen.getByRole('radio', { name: 'Sell' })).toHaveFocus();
  expect(screen.getByRole('button', { name: 'Sell BTC-USD' })).toBeInTheDocument();
});
