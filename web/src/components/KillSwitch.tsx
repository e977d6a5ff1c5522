import { useId, useState } from 'react';
import { useDesk } from '../context';
import { ApiError, type TradingState } from '../services/api';

const STATES: { state: TradingState; label: string }[] = [
  { state: 'HALTED', label: 'Halt' },
  { state: 'REDUCING', label: 'Reduce only' },
  { state: 'ACTIVE', label: 'Resume' },
];

/** The account's kill switch: for risk and admin keys (the server refuses others with 403,
 * and the control then says so instead of pretending). */
export function KillSwitch({ current, onChanged }: { current: TradingState | null; onChanged: () => void }) {
  const { api, accountId } = useDesk();
  const id = useId();
  const [message, setMessage] = useState<string | null>(null);
  const [refused, setRefused] = useState(false);

  async function set(state: TradingState) {
    setMessage(null);
    try {
      const answer = await api.setKillSwitch({ state, account_id: accountId });
      setMessage(`Account ${accountId} is ${answer.state}`);
      onChanged();
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 403) {
        setRefused(true);
        setMessage('Only a risk or admin key may use the kill switch.');
      } else {
        setMessage(failure instanceof ApiError ? `${failure.code}: ${failure.problem?.detail ?? failure.message}` : 'The server cannot be reached.');
      }
    }
  }

  return (
    <section className="panel kill-switch" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Kill switch</h2>
      <div className="buttons" role="group" aria-label={`Trading state of ${accountId}`}>
        {STATES.map(({ state, label }) => (
          <button
            key={state}
            type="button"
            className={state === 'HALTED' ? 'danger' : undefined}
            aria-pressed={current === state}
            disabled={refused}
            onClick={() => void set(state)}
          >
            {label}
          </button>
        ))}
      </div>
      <p role="status" className="hint">
        {message ?? '\u00a0'}
      </p>
    </section>
  );
}
