import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fakeApi, json, order, renderWithDesk } from '../test/desk';
import { TradeHistory } from './TradeHistory';

it('test_paging_when_older_then_newer_then_follows_the_servers_cursor', async () => {
  const queries: string[] = [];
  const api = fakeApi((_m, path) => {
    const query = new URL(path, 'http://x').searchParams;
    queries.push(query.toString());
    return query.get('cursor') === 'c2'
      ? json({ items: [order({ order_id: 'OLD' })], next_cursor: null })
      : json({ items: [order({ order_id: 'NEW' })], next_cursor: 'c2' });
  });
  renderWithDesk(<TradeHistory version={0} />, api);
  await screen.findByText('page 1');
  await waitFor(() => expect(document.querySelector('tr[data-order-id="NEW"]')).not.toBeNull());

  await userEvent.click(screen.getByRole('button', { name: 'Older' }));
  await waitFor(() => expect(document.querySelector('tr[data-order-id="OLD"]')).not.toBeNull());
  expect(screen.getByRole('button', { name: 'Older' })).toBeDisabled();
  await userEvent.click(screen.getByRole('button', { name: 'Newer' }));

  await waitFor(() => expect(document.querySelector('tr[data-order-id="NEW"]')).not.toBeNull());
  expect(queries).toContain('account_id=alice&limit=20&cursor=c2');
});

it('test_filter_when_status_chosen_then_asks_the_server_from_the_first_page', async () => {
  const queries: string[] = [];
  const api = fakeApi((_m, path) => {
    queries.push(new URL(path, 'http://x').searchParams.toString());
    return json({ items: [], next_cursor: null });
  });
  renderWithDesk(<TradeHistory version={0} />, api);

  await userEvent.selectOptions(screen.getByLabelText('Status'), 'SETTLED');

  await waitFor(() => expect(queries).toContain('account_id=alice&status=SETTLED&limit=20'));
});

it('test_fills_when_opened_then_lists_the_orders_fill_events', async () => {
  const api = fakeApi((_m, path) =>
    path.endsWith('/events')
      ? json({
          order_id: 'F1',
          events: [
            { type: 'OrderAccepted', order_id: 'F1', sequence: 2, command_id: 'c', at: '2026-12-06T01:00:00Z', request_id: null },
            { type: 'OrderFilled', order_id: 'F1', sequence: 3, command_id: 'c', at: '2026-12-06T01:00:01Z', request_id: null, quantity: '0.01', price: '60000.00' },
          ],
        })
      : json({ items: [order({ order_id: 'F1', status: 'SETTLED', filled_quantity: '0.01' })], next_cursor: null }),
  );
  renderWithDesk(<TradeHistory version={0} />, api);

  await userEvent.click(await screen.findByRole('button', { name: 'Fills of order F1' }));

  expect(await screen.findByText(/0\.01 @ 60000\.00/)).toBeInTheDocument();
});
