import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';

// Pages update live by polling; a hidden tab stops asking until it is shown again.
export const POLL_MS = 3000;

export function usePoll(path, { interval = POLL_MS, enabled = true } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const tick = useRef(0);
  useEffect(() => {
    if (!enabled || !path) return undefined;
    let alive = true;
    let timer;
    const run = async () => {
      const mine = ++tick.current;
      if (!document.hidden) {
        try {
          const data = await api(path);
          if (alive && mine === tick.current) setState({ data, error: null, loading: false });
        } catch (error) {
          if (alive && mine === tick.current) setState((s) => ({ ...s, error, loading: false }));
        }
      }
      if (alive && interval) timer = setTimeout(run, interval);
    };
    setState((s) => ({ ...s, loading: true }));
    run();
    return () => { alive = false; clearTimeout(timer); };
  }, [path, interval, enabled]);
  return state;
}

export function useRoute() {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'computations').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const href = (...parts) => `#/${parts.map(encodeURIComponent).join('/')}`;
