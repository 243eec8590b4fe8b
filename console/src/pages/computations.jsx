import { useMemo, useState } from 'preact/hooks';
import { qs } from '../api.js';
import { Card, Chart, KeyValues, Loading, Status } from '../components.jsx';
import { ago, num, json, when } from '../format.js';
import { href, usePoll } from '../hooks.js';

const RANGES = [['1h', 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3], ['30d', 30 * 86400e3]];

function SizeChart({ computationKey, range, height = 200 }) {
  const span = RANGES.find(([k]) => k === range)[1];
  // Rounded to 10 s so the polled path is stable between ticks (and cached by the browser).
  const until = Math.ceil(Date.now() / 10000) * 10000;
  const state = usePoll(`/computations/${encodeURIComponent(computationKey)}/size-history${qs({ since: until - span, until, buckets: 60 })}`, { interval: 10000 });
  const series = useMemo(() => {
    const pts = state.data ? state.data.points : [];
    return [pts.map((p) => p.at_ms / 1000), pts.map((p) => p.size)];
  }, [state.data]);
  return <Chart series={series} labels={['size']} colors={['#3b6fd8']} height={height} label="size over time" />;
}

export function Computations() {
  const state = usePoll('/computations');
  const [filter, setFilter] = useState('');
  const rows = (state.data ? state.data.computations : []).filter((c) => c.key.includes(filter) || (c.name || '').toLowerCase().includes(filter.toLowerCase()));
  return (
    <>
      <h1>Computations</h1>
      <div class="toolbar">
        <input type="search" placeholder="Filter by key or name" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      </div>
      <Loading state={state} />
      <div class="grid">
        {rows.map((c) => (
          <a class="card tile" href={href('computations', c.key)} key={c.key} data-key={c.key}>
            <header>
              <h2>{c.name || c.key}</h2>
              <Status status={c.status} error={c.error} />
            </header>
            <div class="muted small">{c.class === 'audience' ? 'Audience' : 'Computed trait'} · <code>{c.key}</code></div>
            <div class="big" data-testid="size">{num(c.size)}</div>
            <div class="muted small">{c.class === 'audience' ? 'members' : 'profiles with a value'} · last change {ago(c.last_change_at_ms)}</div>
            {c.status === 'Failed' && <p class="error">{c.error}</p>}
            <SizeChart computationKey={c.key} range="24h" height={90} />
          </a>
        ))}
      </div>
    </>
  );
}

function Members({ computationKey }) {
  const [cursors, setCursors] = useState([null]);
  const after = cursors[cursors.length - 1];
  const state = usePoll(`/computations/${encodeURIComponent(computationKey)}/members${qs({ after, limit: 10 })}`, { interval: 10000 });
  const data = state.data;
  return (
    <Card title="Members" actions={<span class="muted small">page {cursors.length}</span>}>
      <Loading state={state} />
      {data && (
        <div class="table-wrap">
          <table>
            <thead><tr><th>user_id</th><th>email</th><th>value</th><th>since</th></tr></thead>
            <tbody>
              {data.members.map((m) => (
                <tr key={m.profile_id}>
                  <td><a href={href('profiles', m.profile_id)}>{m.user_id || m.profile_id}</a></td>
                  <td>{m.email || '–'}</td><td><code>{json(m.value)}</code></td><td>{ago(m.updated_at_ms)}</td>
                </tr>
              ))}
              {data.members.length === 0 && <tr><td colSpan={4} class="muted">Nobody yet.</td></tr>}
            </tbody>
          </table>
        </div>
      )}
      <div class="pager">
        <button disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>← Previous</button>
        <button disabled={!data || !data.next} onClick={() => setCursors([...cursors, data.next])}>Next →</button>
      </div>
    </Card>
  );
}

export function Computation({ computationKey }) {
  const key = encodeURIComponent(computationKey);
  const summary = usePoll(`/computations/${key}?sample=0`);
  const definition = usePoll(`/computations/${key}/definition`, { interval: 0 });
  const idents = usePoll(`/computations/${key}/identifiers`, { interval: 60000 });
  const [range, setRange] = useState('24h');
  const c = summary.data;
  const d = definition.data;
  return (
    <>
      <p class="crumbs"><a href={href('computations')}>Computations</a> / {computationKey}</p>
      <Loading state={summary} />
      {c && (
        <>
          <h1>{c.name || c.key} <Status status={c.status} error={c.error} /></h1>
          <div class="grid">
            <Card title="Size">
              <div class="big" data-testid="computation-size">{num(c.size)}</div>
              <KeyValues rows={[['class', c.class === 'audience' ? 'Audience' : 'Computed trait'], ['key', <code>{c.key}</code>],
                ['id', <code>{c.id}</code>], ['last change', when(c.last_change_at_ms)], ['created', when(c.created_at_ms)],
                ...(c.error ? [['why it failed', <span class="error">{c.error}</span>]] : [])]} />
            </Card>
            <Card title="Size over time" wide actions={
              <div class="seg">{RANGES.map(([k]) => <button key={k} class={k === range ? 'on' : ''} onClick={() => setRange(k)}>{k}</button>)}</div>}>
              <SizeChart computationKey={computationKey} range={range} />
            </Card>
          </div>
        </>
      )}
      <div class="grid">
        <Card title="Definition">
          {d && (
            <>
              <h3>YAML</h3>
              <pre data-testid="yaml">{d.yaml || '(not in traitsync.yaml)'}</pre>
              <h3>Query Language</h3>
              {d.query ? <pre data-testid="query">{d.query}</pre> : <p class="muted">{d.query_unavailable}</p>}
            </>
          )}
        </Card>
        <Card title="Identifiers of members" actions={idents.data && <span class="muted small">counted {ago(idents.data.counted_at_ms)}</span>}>
          {idents.data && (
            <table>
              <tbody>
                {Object.entries(idents.data.identifiers).map(([t, n]) => (
                  <tr key={t}><td>{t}</td><td class="num">{num(n)}</td>
                    <td class="bar-cell"><div class="bar" style={{ width: `${idents.data.size ? Math.min(100, (100 * n) / idents.data.size) : 0}%` }} /></td></tr>))}
                {Object.keys(idents.data.identifiers).length === 0 && <tr><td class="muted">No members yet.</td></tr>}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Connected destinations">
          {d && (d.destinations.length ? (
            <ul class="plain">
              {d.destinations.map((x) => (
                <li key={x.destination_id}><a href={href('destinations', x.destination_id)}>{x.name}</a>
                  <span class="muted small"> {x.kind} · {x.mode === 'list' ? 'list sync' : x.send.join(' + ')}</span></li>))}
            </ul>
          ) : <p class="muted">Not connected to any destination.</p>)}
        </Card>
      </div>
      <Members computationKey={computationKey} />
    </>
  );
}
