import { useState } from 'preact/hooks';
import { api, qs } from '../api.js';
import { Card, Loading, Tree } from '../components.jsx';
import { num } from '../format.js';
import { href, usePoll } from '../hooks.js';

export function Identity() {
  const state = usePoll('/identity/violations?samples=5', { interval: 5000 });
  const [identifier, setIdentifier] = useState('');
  const [explained, setExplained] = useState(null);
  const [error, setError] = useState(null);
  const run = async (e) => {
    e.preventDefault();
    try { setError(null); setExplained(await api(`/identity/explain${qs({ identifier })}`)); } catch (err) { setError(err.message); }
  };
  return (
    <>
      <h1>Identity</h1>
      <Card title="Explain an identifier">
        <form class="toolbar" onSubmit={run}>
          <input value={identifier} onInput={(e) => setIdentifier(e.currentTarget.value)} placeholder="type:value, e.g. email:ada@example.com" aria-label="identifier to explain" />
          <button type="submit" disabled={!identifier.includes(':')}>Explain</button>
        </form>
        {error && <p class="error">{error}</p>}
        {explained && (
          <>
            {explained.profile_id && <p><a href={href('profiles', explained.profile_id)}>Open the profile</a></p>}
            <ul class="tree"><Tree node={explained.tree} /></ul>
          </>)}
      </Card>
      <h2>Violations by category</h2>
      <Loading state={state} />
      <div class="grid">
        {state.data && state.data.categories.map((c) => (
          <Card key={c.category} title={c.category} actions={<b class={c.count ? 'error' : 'muted'}>{num(c.count)}</b>}>
            {c.samples.length ? (
              <ul class="plain small">
                {c.samples.map((s, i) => (
                  <li key={i}><code>{s.id_type ? `${s.id_type}:${s.value}` : '(no identifier)'}</code> · {s.source_id} · {s.message_id}
                    {s.profile_id && <> · <a href={href('profiles', s.profile_id)}>profile</a></>}
                    {s.detail && <div class="muted">{s.detail}</div>}</li>))}
              </ul>) : <p class="muted small">None.</p>}
          </Card>))}
      </div>
    </>
  );
}
