export const num = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));

export function when(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function ago(ms) {
  if (!ms) return '–';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const json = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
