/** A time of day in the viewer's zone, the full ISO time on hover. */
export function Time({ iso }: { iso: string }) {
  const date = new Date(iso);
  return (
    <time dateTime={iso} title={iso}>
      {Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], { hour12: false })}
    </time>
  );
}

/** A decimal string shortened for display only (never used for arithmetic on money). */
export function trimDecimal(value: string | null | undefined, places = 8): string {
  if (value === null || value === undefined) return '—';
  const [whole, fraction = ''] = value.split('.');
  const kept = fraction.slice(0, places).replace(/0+$/, '');
  return kept ? `${whole}.${kept}` : (whole ?? value);
}
