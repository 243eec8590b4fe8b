import { useMemo, useState } from 'preact/hooks';
import { api, qs } from '../api.js';
import { Card, Chart, KeyValues, Loading } from '../components.jsx';
import { ago, json, num, when } from '../format.js';
import { href, usePoll } from '../hooks.js';

const RANGES = [['10m', 600e3], ['1h', 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3], ['14d', 14 * 86400e3]];
const STATE_ORDER = ['pending', 'in_flight', 'retry_wait', 'delivered', 'dead', 'filtered'];

export function Destinations() {
  const state = usePoll('/destinations');
  return (
    <>
      <h1>Destinations</h1>
      <Loading state={state} />
      <div class="grid">
        {state.data && state.data.destinations.map((d) => (
          <a class="card tile" key={d.id} href={href('destinations', d.id)} data-id={d.id}>
            <header><h2>{d.name}</h2>{d.paused ? <span class="badge bad">paused</span> : <span class="badge ok">active</span>}</header>
            <div class="muted small">{d.kind} · {d.mode === 'list' ? 'list' : 'event'} destination · <code>{d.id}</code></div>
            <div class="states">
              {STATE_ORDER.map((s) => <div key={s} class={`state ${s}`}><b>{num(d.states[s] || 0)}</b><span>{s.replace('_', ' ')}</span></div>)}
            </div>
          </a>
        ))}
      </div>
    </>
  );
}

function Funnel({ o }) {
  const filtered = Object.values(o.filtered_at_destination).reduce((a, b) => a + b, 0);
  const failed = Object.values(o.failed_delivery).reduce((a, b) => a + b, 0);
  const stages = [
    ['Entered delivery', o.total, ''], ['Filtered at destination', filtered, 'filtered'],
    ['Not yet attempted', o.pending, 'pending'], ['Pending retry', o.pending_retry, 'retry'],
    ['Failed delivery', failed, 'dead'], ['Successful delivery', o.successful_delivery, 'ok'],
  ];
  return (
    <div class="funnel" data-testid="funnel">
      {stages.map(([label, n, cls]) => (
        <div class="stage" key={label}>
          <span class="label">{label}</span>
          <div class="track"><div class={`fill ${cls}`} style={{ width: `${o.total ? (100 * n) / o.total : 0}%` }} /></div>
          <b class="num">{num(n)}</b>
        </div>))}
      <p class="muted small">{num(o.retried_then_delivered)} delivered after a retry.</p>
      {(filtered > 0 || failed > 0) && (
        <table>
          <thead><tr><th>discard / failure code</th><th>stage</th><th class="num">messages</th></tr></thead>
          <tbody>
            {Object.entries(o.filtered_at_destination).map(([c, n]) => <tr key={`f${c}`}><td><code>{c}</code></td><td>filtered</td><td class="num">{num(n)}</td></tr>)}
            {Object.entries(o.failed_delivery).map(([c, n]) => <tr key={`d${c}`}><td><code>{c}</code></td><td>failed</td><td class="num">{num(n)}</td></tr>)}
          </tbody>
        </table>)}
    </div>
  );
}

function Timeline({ id, since, until }) {
  const state = usePoll(`/destinations/${id}/timeline${qs({ since, until })}`);
  const series = useMemo(() => {
    const p = state.data ? state.data.points : [];
    return [p.map((x) => x.at_ms / 1000), p.map((x) => x.delivered), p.map((x) => x.retried), p.map((x) => x.dead)];
  }, [state.data]);
  return <Chart series={series} labels={['delivered', 'retried', 'dead']} colors={['#2e9d5b', '#d89a2b', '#d2453d']} stacked label="attempts per minute" />;
}

function DeadLetters({ id }) {
  const [cursors, setCursors] = useState([null]);
  const [bump, setBump] = useState(0);
  const [note, setNote] = useState(null);
  const before = cursors[cursors.length - 1];
  const state = usePoll(`/destinations/${id}/dead-letters${qs({ before, limit: 10, n: bump || undefined })}`);
  const replay = async (ids) => {
    const r = await api(`/destinations/${id}/dead-letters/replay`, { method: 'POST', body: { outbox_ids: ids } });
    setNote(`Re-queued ${r.replayed} message${r.replayed === 1 ? '' : 's'}; they are sent again with their original messageId.`);
    setCursors([null]);
    setBump(bump + 1);
  };
  const d = state.data;
  return (
    <Card title={`Dead letters${d ? ` (${num(d.total)})` : ''}`} actions={d && d.total > 0 && <button onClick={() => replay(null)}>Replay all</button>}>
      {note && <p class="note" role="status">{note}</p>}
      <Loading state={state} />
      {d && (
        <div class="table-wrap">
          <table data-testid="dead-letters">
            <thead><tr><th>died</th><th>type</th><th>code</th><th>error</th><th>attempts</th><th /></tr></thead>
            <tbody>
              {d.dead_letters.map((x) => (
                <tr key={x.outbox_id}>
                  <td class="when" title={when(x.died_at_ms)}>{ago(x.died_at_ms)}</td><td>{x.message_type}</td><td><code>{x.code}</code></td>
                  <td><span class="clip" title={x.error}>{x.error}</span></td><td class="num">{x.attempts}</td>
                  <td><button onClick={() => replay([x.outbox_id])} aria-label={`Replay ${x.message_id}`}>Replay</button></td>
                </tr>))}
              {d.dead_letters.length === 0 && <tr><td colSpan={6} class="muted">No dead letters.</td></tr>}
            </tbody>
          </table>
        </div>)}
      <div class="pager">
        <button disabled={cursors.length < 2} onClick={() => setCursors(cursors.slice(0, -1))}>← Newer</button>
        <button disabled={!d || !d.next} onClick={() => setCursors([...cursors, d.next])}>Older →</button>
      </div>
    </Card>
  );
}

function Debugger({ id }) {
  const state = usePoll(`/destinations/${id}/debugger${qs({ limit: 15 })}`);
  const [open, setOpen] = useState(null);
  return (
    <Card title="Debugger: last messages, requests and answers">
      <Loading state={state} />
      {state.data && (
        <ul class="debug">
          {state.data.messages.map((m) => {
            const last = m.attempts[m.attempts.length - 1];
            return (
              <li key={m.outbox_id}>
                <button class="row" onClick={() => setOpen(open === m.outbox_id ? null : m.outbox_id)}>
                  <span class={`badge ${m.state === 'delivered' ? 'ok' : m.state === 'dead' ? 'bad' : 'busy'}`}>{m.state}</span>
                  <span>{m.type} {m.message.event || m.message.audience_key || ''}</span>
                  <span class="muted small">{last ? `HTTP ${last.http_status ?? '–'} · ${last.duration_ms} ms` : 'not attempted'} · {ago(m.created_at_ms)}</span>
                </button>
                {open === m.outbox_id && (
                  <div class="detail">
                    <h3>Message</h3><pre>{JSON.stringify(m.message, null, 2)}</pre>
                    {m.attempts.map((a) => (
                      <div key={a.attempt}>
                        <h3>Attempt {a.attempt}: {a.outcome}{a.code ? ` (${a.code})` : ''} at {when(a.at_ms)}</h3>
                        {a.requests.map((r, i) => <pre key={i}>{`${r.method} ${r.url}\n→ ${r.status ?? r.error} in ${r.duration_ms} ms`}</pre>)}
                        {a.detail && <pre>{a.detail}</pre>}
                      </div>))}
                  </div>)}
              </li>);
          })}
          {state.data.messages.length === 0 && <li class="muted">Nothing sent yet.</li>}
        </ul>)}
    </Card>
  );
}

export function DestinationPage({ destinationId }) {
  const id = encodeURIComponent(destinationId);
  const list = usePoll('/destinations');
  const [range, setRange] = useState('1h');
  const span = RANGES.find(([k]) => k === range)[1];
  const until = Math.ceil(Date.now() / 5000) * 5000;
  const since = until - span;
  const overview = usePoll(`/destinations/${id}/delivery-overview${qs({ since, until })}`);
  const d = list.data && list.data.destinations.find((x) => x.id === destinationId);
  return (
    <>
      <p class="crumbs"><a href={href('destinations')}>Destinations</a> / {destinationId}</p>
      <h1>{d ? d.name : destinationId}</h1>
      <div class="toolbar">
        <span class="muted">Time range</span>
        <div class="seg">{RANGES.map(([k]) => <button key={k} class={k === range ? 'on' : ''} onClick={() => setRange(k)}>{k}</button>)}</div>
      </div>
      <div class="grid">
        <Card title="Delivery Overview">
          <Loading state={overview} />
          {overview.data && <Funnel o={overview.data} />}
        </Card>
        <Card title="Attempts per minute"><Timeline id={id} since={since} until={until} /></Card>
        {d && (
          <Card title="Settings">
            <KeyValues rows={[['kind', d.kind], ['mode', d.mode], ['rate', `${d.rate_per_second ?? '–'}/s`], ['batch size', d.batch_size],
              ['paused', d.paused ? `until ${when(d.paused_until_ms)} (${d.pause_code})` : 'no'],
              ['connections', d.connections.map((c) => c.computation).join(', ')]]} />
          </Card>)}
      </div>
      <DeadLetters id={id} />
      <Debugger id={id} />
    </>
  );
}
