import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized, token } from './api.js';
import { href, useRoute } from './hooks.js';
import { Computations, Computation } from './pages/computations.jsx';
import { Profiles, Profile } from './pages/profiles.jsx';
import { Destinations, DestinationPage } from './pages/destinations.jsx';
import { Sources } from './pages/sources.jsx';
import { Identity } from './pages/identity.jsx';
import './style.css';

const NAV = [['computations', 'Computations'], ['profiles', 'Profiles'], ['destinations', 'Destinations'],
  ['sources', 'Sources'], ['identity', 'Identity']];

function Login({ onDone, notice }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(notice);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api('/sources', { secret: value });  // cheap and always there: proves the token
      token.set(value);
      onDone();
    } catch (err) {
      setError(err.status === 401 ? 'The server refused this token.' : err.message);
    } finally { setBusy(false); }
  };
  return (
    <main class="login">
      <form onSubmit={submit} class="card">
        <h1>traitsync</h1>
        <label for="token">Management token</label>
        <input id="token" type="password" autocomplete="current-password" value={value}
          onInput={(e) => setValue(e.currentTarget.value)} placeholder="management_api.token from traitsync.yaml" />
        <button type="submit" disabled={busy || !value}>Sign in</button>
        {error && <p class="error" role="alert">{error}</p>}
        <p class="muted small">Kept for this browser tab only.</p>
      </form>
    </main>
  );
}

function Page({ route }) {
  const [section, id] = route;
  switch (section) {
    case 'computations': return id ? <Computation computationKey={id} /> : <Computations />;
    case 'profiles': return id ? <Profile profileId={id} /> : <Profiles />;
    case 'destinations': return id ? <DestinationPage destinationId={id} /> : <Destinations />;
    case 'sources': return <Sources sourceId={id} />;
    case 'identity': return <Identity />;
    default: return <p>Nothing here. <a href={href('computations')}>Computations</a></p>;
  }
}

function App() {
  const [signedIn, setSignedIn] = useState(!!token.get());
  const [notice, setNotice] = useState(null);
  const route = useRoute();
  useEffect(() => onUnauthorized(() => {
    token.clear();
    setNotice('The token was refused; sign in again.');
    setSignedIn(false);
  }), []);
  if (!signedIn) return <Login notice={notice} onDone={() => { setNotice(null); setSignedIn(true); }} />;
  return (
    <div class="shell">
      <nav>
        <a class="brand" href={href('computations')}>traitsync</a>
        <div class="links">
          {NAV.map(([key, label]) => (
            <a key={key} href={href(key)} class={route[0] === key ? 'active' : ''}>{label}</a>))}
        </div>
        <button class="link" onClick={() => { token.clear(); setSignedIn(false); }}>Sign out</button>
      </nav>
      <main><Page route={route} /></main>
    </div>
  );
}

render(<App />, document.getElementById('app'));
