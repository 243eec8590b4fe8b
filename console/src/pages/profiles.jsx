import { useState } from 'preact/hooks';
import { api, qs } from '../api.js';
import { Card, KeyValues, Loading, Tree } from '../components.jsx';
import { ago, json, when } from '../format.js';
import { href, usePoll } from '../hooks.js';

export function Profiles() {
  const [q, setQ] = useState(new URLSearchParams(location.hash.split('?')[1] || '').get('q') || '');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const search = async (e) => {
    e && e.preventDefault();
    if (!q.trim()) return;
    try {
      setError(null);
      setResult(await api(`/profiles${qs({ q: q.trim(), limit: 25 })}`));
    } catch (err) { setError(err.message); }
  };
  return (
    <>
      <h1>Profiles</h1>
      <form class="toolbar" onSubmit={search} role="search">
        <input type="search" name="q" value={q} onInput={(e) => setQ(e.currentTarget.value)}
          placeholder="Any identifier: user_042, ada@example.com, anonymous id, or type:value" aria-label="identifier" />
        <button type="submit">Search</button>
      </form>
      {error && <p class="error">{error}</p>}
      {result && (
        <Card title={`${result.profiles.length} match${result.profiles.length === 1 ? '' : 'es'}`}>
          <div class="table-wrap">
            <table>
              <thead><tr><th>matched</th><th>profile</th><th>collection</th></tr></thead>
              <tbody>
                {result.profiles.map((p) => (
                  <tr key={p.profile_id}>
                    <td><a href={href('profiles', p.profile_id)}>{p.id_type}:{p.value}</a></td>
                    <td><code>{p.profile_id}</code></td><td>{p.collection}</td>
                  </tr>))}
                {result.profiles.length === 0 && <tr><td colSpan={3} class="muted">No profile holds an identifier equal to or starting with “{result.query}”.</td></tr>}
              </tbody>
            </table>
          </div>
        </Card>
      )}
    </>
  );
}

function Events({ profileId, first }) {
  const [older, setOlder] = useState([]);
  const pages = [first, ...older];  // the first page follows the live profile; older ones stay put
  const more = async () => {
    const last = pages[pages.length - 1];
    setOlder([...older, await api(`/profiles/${encodeURIComponent(profileId)}/events${qs({ before: last.next })}`)]);
  };
  const events = pages.flatMap((p) => p.events);
  return (
    <Card title="Recent events">
      <div class="table-wrap">
        <table>
          <thead><tr><th>time</th><th>type</th><th>event</th><th>properties / traits</th><th>source</th></tr></thead>
          <tbody>
            {events.map((e) => (
              <tr key={e.offset}>
                <td class="when" title={when(e.timestamp_ms)}>{ago(e.timestamp_ms)}</td><td>{e.type}</td><td>{e.event || '–'}</td>
                <td><code class="clip">{json(e.type === 'identify' ? e.traits : e.properties)}</code></td><td>{e.source_id}</td>
              </tr>))}
            {events.length === 0 && <tr><td colSpan={5} class="muted">No events.</td></tr>}
          </tbody>
        </table>
      </div>
      {pages[pages.length - 1].next && <div class="pager"><button onClick={more}>Older events</button></div>}
    </Card>
  );
}

export function Profile({ profileId }) {
  const state = usePoll(`/profiles/${encodeURIComponent(profileId)}`, { interval: 5000 });
  const p = state.data;
  return (
    <>
      <p class="crumbs"><a href={href('profiles')}>Profiles</a> / {profileId}</p>
      <Loading state={state} />
      {p && (
        <>
          <h1>{(p.identifiers.find((i) => i.type === 'email') || p.identifiers[0] || { value: p.profile_id }).value}</h1>
          {p.requested !== p.profile_id && <p class="muted">{p.requested} was merged into {p.profile_id}.</p>}
          <div class="grid">
            <Card title="Identifiers">
              <table>
                <tbody>
                  {p.identifiers.map((i) => (
                    <tr key={`${i.type}:${i.value}`}><td>{i.type}</td><td><code>{i.value}</code></td><td class="muted small">{i.source_id} · {ago(i.created_at_ms)}</td></tr>))}
                </tbody>
              </table>
              {p.metadata && <KeyValues rows={[['first seen', when(p.metadata.created_at_ms)], ['last seen', when(p.metadata.updated_at_ms)], ['profile id', <code>{p.profile_id}</code>]]} />}
            </Card>
            <Card title="Computed values">
              <table>
                <tbody>
                  {p.computed.map((c) => (
                    <tr key={c.key}><td><a href={href('computations', c.key)}>{c.key}</a></td>
                      <td>{c.class === 'audience' ? (c.value === true ? <span class="badge ok">member</span> : <span class="badge idle">left</span>) : <code>{json(c.value)}</code>}</td>
                      <td class="muted small">{ago(c.updated_at_ms)}</td></tr>))}
                  {p.computed.length === 0 && <tr><td class="muted">None.</td></tr>}
                </tbody>
              </table>
            </Card>
            <Card title="Traits">
              <table>
                <tbody>
                  {p.traits.map((t) => <tr key={t.key}><td>{t.key}</td><td><code>{json(t.value)}</code></td></tr>)}
                  {p.traits.length === 0 && <tr><td class="muted">None.</td></tr>}
                </tbody>
              </table>
            </Card>
            <Card title="Account links">
              {p.links.length ? (
                <ul class="plain">{p.links.map((l) => (
                  <li key={l.profile_id}><a href={href('profiles', l.profile_id)}>{l.identifiers.map((i) => `${i.type}:${i.value}`).join(', ') || l.profile_id}</a></li>))}</ul>
              ) : <p class="muted">Not linked to any account.</p>}
            </Card>
          </div>
          <Card title="Why these identifiers are one profile">
            <ul class="tree" data-testid="explain">{p.explain ? <Tree node={p.explain} /> : <li>No identifiers.</li>}</ul>
          </Card>
          <Events profileId={p.profile_id} first={p.recent_events} key={p.profile_id} />
        </>
      )}
    </>
  );
}
