import { useEffect, useId, useRef } from 'react';
import { createChart, type IChartApi, type ISeriesApi, type UTCTimestamp } from 'lightweight-charts';
import type { PricePoint } from '../hooks/useMarket';

type Props = { symbol: string; prices: PricePoint[]; theme: 'dark' | 'light' };

const COLORS = {
  dark: { background: '#0d1117', text: '#c9d1d9', grid: '#1f2630', line: '#4aa3ff' },
  light: { background: '#ffffff', text: '#1f2328', grid: '#eaeef2', line: '#0969da' },
};

/** The last price over time (TradingView's lightweight-charts), one point per second. */
export function PriceChart({ symbol, prices, theme }: Props) {
  const id = useId();
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<'Line'> | null>(null);

  useEffect(() => {
    if (!box.current) return;
    const made = createChart(box.current, {
      autoSize: true,
      timeScale: { timeVisible: true, secondsVisible: true },
      // Its logo is injected with an inline <style>, which the page's CSP refuses; the
      // attribution its licence asks for is the link in the panel's heading instead.
      layout: { attributionLogo: false },
    });
    chart.current = made;
    series.current = made.addLineSeries({ lineWidth: 2, priceLineVisible: true });
    return () => {
      made.remove();
      chart.current = null;
      series.current = null;
    };
  }, []);

  useEffect(() => {
    const colors = COLORS[theme];
    chart.current?.applyOptions({
      layout: { background: { color: colors.background }, textColor: colors.text },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
    });
    series.current?.applyOptions({ color: colors.line });
  }, [theme]);

  useEffect(() => {
    series.current?.setData(prices.map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
  }, [prices]);

  return (
    <section className="panel price-chart" aria-labelledby={`${id}-title`}>
      <div className="panel-head">
        <h2 id={`${id}-title`}>{symbol} last price</h2>
        <a className="attribution" href="https://www.tradingview.com/" target="_blank" rel="noreferrer noopener">
          Charting by TradingView
        </a>
      </div>
      <p className="visually-hidden" aria-live="off">
        {prices.length ? `Last price ${prices[prices.length - 1]!.value}` : 'No prices yet'}
      </p>
      <div className="chart-box" ref={box} />
    </section>
  );
}
