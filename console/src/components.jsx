import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export function Status({ status, error }) {
  const cls = { Live: 'ok', Backfilling: 'busy', Computing: 'busy', Failed: 'bad' }[status] || 'idle';
  return <span class={`badge ${cls}`} title={error || ''}>{status}</span>;
}

export function Loading({ state }) {
  if (state.error) return <p class="error" role="alert">{state.error.message}</p>;
  if (state.loading && !state.data) return <p class="muted">Loading…</p>;
  return null;
}

export function Card({ title, children, actions, wide }) {
  return (
    <section class={`card${wide ? ' span2' : ''}`}>
      {(title || actions) && <header><h2>{title}</h2>{actions}</header>}
      {children}
    </section>
  );
}

// One chart for every time series: sizes, deliveries. Resizes with its box (phones included).
export function Chart({ series, labels, colors, height = 220, stacked = false, label }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    if (!box.current) return undefined;
    const width = box.current.clientWidth || 600;
    const opts = {
      width, height,
      legend: { live: false, show: labels.length > 1 },
      scales: { x: { time: true } },
      axes: [{ stroke: '#667' }, { stroke: '#667', size: 56 }],
      series: [{}, ...labels.map((l, i) => ({
        label: l, stroke: colors[i], width: 2,
        fill: stacked ? `${colors[i]}55` : `${colors[i]}22`,
        paths: stacked ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
      }))],
    };
    plot.current = new uPlot(opts, series, box.current);
    const obs = new ResizeObserver(() => plot.current && plot.current.setSize({ width: box.current.clientWidth, height }));
    obs.observe(box.current);
    return () => { obs.disconnect(); plot.current.destroy(); plot.current = null; };
  }, [labels.join(','), stacked, height]);
  useEffect(() => { if (plot.current) plot.current.setData(series); }, [series]);
  return <div class="chart" ref={box} aria-label={label} />;
}

export function Pager({ hasPrev, hasNext, onPrev, onNext }) {
  return (
    <div class="pager">
      <button disabled={!hasPrev} onClick={onPrev}>← Newer</button>
      <button disabled={!hasNext} onClick={onNext}>Older →</button>
    </div>
  );
}

export function Tree({ node }) {
  if (!node) return null;
  return (
    <li>
      <span>{node.label}</span>
      {node.children.length > 0 && <ul>{node.children.map((c, i) => <Tree key={i} node={c} />)}</ul>}
    </li>
  );
}

export function KeyValues({ rows }) {
  return (
    <dl class="kv">
      {rows.map(([k, v]) => [<dt key={`k${k}`}>{k}</dt>, <dd key={`v${k}`}>{v}</dd>])}
    </dl>
  );
}
