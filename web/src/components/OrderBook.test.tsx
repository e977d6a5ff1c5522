import { render, screen } from '@testing-library/react';
import { OrderBook, DepthChart } from './OrderBook';

const book = {
  symbol: 'BTC-USD',
  last_price: '60000.00',
  best_bid: '59990.00',
  best_ask: '60010.00',
  time: '2026-12-06T01:00:00Z',
  bids: [
    { price: '59990.00', quantity: '1.5' },
    { price: '59980.00', quantity: '2' },
  ],
  asks: [{ price: '60010.00', quantity: '3' }],
};

it('test_book_when_levels_come_and_go_then_the_row_count_stays_fixed', () => {
  const { rerender, container } = render(<OrderBook symbol="BTC-USD" book={book} live="open" />);
  const rows = container.querySelectorAll('tbody tr').length;

  rerender(<OrderBook symbol="BTC-USD" book={{ ...book, bids: [], asks: [] }} live="open" />);

  expect(container.querySelectorAll('tbody tr').length).toBe(rows);
});

it('test_book_when_ticked_then_shows_levels_last_price_and_spread', () => {
  render(<OrderBook symbol="BTC-USD" book={book} live="open" />);

  expect(screen.getByText('59980.00')).toBeInTheDocument();
  expect(screen.getByTestId('last-price')).toHaveTextContent('60000');
  expect(screen.getByText('spread 20.00')).toBeInTheDocument();
});

it('test_depth_chart_when_book_then_draws_cumulative_bids_and_asks', () => {
  const { container } = render(<DepthChart book={book} width={100} height={50} />);

  const bids = container.querySelector('.depth-bids')!.getAttribute('d')!;
  expect(bids.startsWith('M')).toBe(true);
  // the deepest bid level stands at the full height (cumulative 3.5 of 3.5)
  expect(bids).toContain('L0,4');
  expect(container.querySelector('.depth-asks')!.getAttribute('d')).toContain('L100');
});
