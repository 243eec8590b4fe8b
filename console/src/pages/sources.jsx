import { useState } from 'preact/hooks';
import { Card, Loading } from '../components.jsx';
import { ago, when } from '../format.js';
import { href, usePoll } from '../hooks.js';

export function Sources({ sourceId }) {
  const sources = usePoll('/sources', { interval: 0 });
  const list = sources.data || [];
  const current = sourceId || (list[0] && list[0].id);
  const debug = usePoll(current ? `/sources/${encodeURIComponent(current)}/debugger?limit=50` : null, { interval: 2000 });
  const [open, setOpen] = useState(null);
  const d = debug.data;
  return (
    <>
      <h1>Sources</h1>
      <Loading state={sources} />
      <div class="toolbar">
        {list.map((s) => <a key={s.id} class={`chip ${s.id === current ? 'on' : ''}`} href={href('sources', s.id)}>{s.name} <span class="muted">{s.enabled ? '' : '(disabled)'}</span></a>)}
      </div>
      {d && (
        <div class="grid wide">
          <Card title={`Live events (${d.events.length})`}>
            <ul class="debug scroll">
              {d.events.map((e) => (
                <li key={e.offset}>
                  <button class="row" onClick={() => setOpen(open === e.offset ? null : e.offset)}>
                    <span class="badge idle">{e.type}</span><span>{e.event || e.body.name || e.body.userId || e.body.anonymousId}</span>
                    <span class="muted small" title={e.receivedAt}>{e.receivedAt ? ago(Date.parse(e.receivedAt)) : ''}</span>
                  </button>
                  {open === e.offset && <pre>{JSON.stringify(e.body, null, 2)}</pre>}
                </li>))}
              {d.events.length === 0 && <li class="muted">No events yet.</li>}
            </ul>
          </Card>
          <Card title={`Rejections (${d.rejections.length})`}>
            <div class="table-wrap">
              <table data-testid="rejections">
                <thead><tr><th>when</th><th>code</th><th>why</th></tr></thead>
                <tbody>
                  {d.rejections.map((r, i) => (
                    <tr key={i}><td class="when" title={when(r.received_at_ms)}>{ago(r.received_at_ms)}</td><td><code>{r.code}</code></td>
                      <td><span class="clip" title={r.message || r.detail}>{r.message || r.detail || JSON.stringify(r)}</span></td></tr>))}
                  {d.rejections.length === 0 && <tr><td colSpan={3} class="muted">Nothing rejected.</td></tr>}
                </tbody>
              </table>
            </div>
          </Card>
        </div>)}
    </>
  );
}
