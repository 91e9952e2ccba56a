/**
 * `/status`: every source at a glance, for an operator. Plain HTML with
 * charts drawn as inline SVG by a few lines of script: no build step, nothing
 * loaded from elsewhere. The page holds no data: its script reads
 * `/status/data` with an admin token (from `#token=…`, which browsers never
 * send to the server, or pasted into the form), every 5 seconds.
 */
export const STATUS_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Status · REST aggregation gateway</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#f6f8fa}
h1{font-size:1.3rem;margin:0 0 .2rem}
.meta{color:#59636e;margin-bottom:1rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:1rem}
.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:.8rem 1rem}
.card h2{font-size:1.05rem;margin:0;display:flex;justify-content:space-between;align-items:center}
.badge{font-size:.75rem;padding:.1rem .5rem;border-radius:1rem;color:#fff;font-weight:600}
.CLOSED{background:#1a7f37}.HALF_OPEN{background:#9a6700}.OPEN{background:#cf222e}.ISOLATED{background:#59636e}
.failing{border-color:#cf222e;box-shadow:0 0 0 1px #cf222e}
dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem .8rem;margin:.6rem 0}
dt{color:#59636e}dd{margin:0;font-variant-numeric:tabular-nums}
.chart{margin-top:.3rem}.chart span{color:#59636e;font-size:.75rem}
svg{display:block;width:100%;height:42px;background:#f6f8fa;border-radius:4px}
#login{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:1rem;max-width:36rem}
#login input{width:100%;font:inherit;margin:.5rem 0;padding:.3rem}
.warn{color:#cf222e}
</style></head><body>
<h1>Status</h1>
<div class="meta" id="meta">loading…</div>
<form id="login" hidden>
<p>This page needs an admin token (the one <code>npm start</code> prints, or <code>npm run token -- --sub &lt;id&gt; --admin</code>).</p>
<input id="token" type="password" placeholder="eyJ…" autocomplete="off"><button>Show status</button>
<p class="warn" id="login-error"></p>
</form>
<div class="grid" id="sources"></div>
<script>
const KEY = 'gateway-status-token';
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) { sessionStorage.setItem(KEY, fromHash); history.replaceState(null, '', location.pathname); }
const $ = (id) => document.getElementById(id);
$('login').addEventListener('submit', (e) => { e.preventDefault(); sessionStorage.setItem(KEY, $('token').value.trim()); refresh(); });

/** One SVG of one or more lines ({ values, color }) on a shared scale; null values leave gaps. */
function chart(lines, max) {
  const w = 300, h = 42;
  const top = Math.max(max ?? 0, ...lines.flatMap((l) => l.values.filter((v) => v !== null))) || 1;
  const path = (values) => {
    let d = '', pen = false;
    values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const x = (i / (values.length - 1)) * w, y = h - 2 - (v / top) * (h - 4);
      d += (pen ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1); pen = true;
    });
    return d;
  };
  return '<svg viewBox="0 0 ' + w + ' ' + h + '" preserveAspectRatio="none">' +
    lines.map((l) => '<path d="' + path(l.values) + '" fill="none" stroke="' + l.color + '" stroke-width="1.5"/>' + dots(l)).join('') + '</svg>';
  // A bucket with no neighbour draws no line: a dot shows it.
  function dots(l) {
    return l.values.map((v, i) => (v !== null && (l.values[i - 1] ?? null) === null && (l.values[i + 1] ?? null) === null)
      ? '<circle cx="' + ((i / (l.values.length - 1)) * w).toFixed(1) + '" cy="' + (h - 2 - (v / top) * (h - 4)).toFixed(1) + '" r="2.5" fill="' + l.color + '"/>' : '').join('');
  }
}
const pct = (v) => (v === null || v === undefined ? '–' : (v * 100).toFixed(1) + ' %');
const ms = (v) => (v === null || v === undefined ? '–' : v + ' ms');
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

function card(s) {
  const failing = s.breaker !== 'CLOSED' || (s.last15m.errorRate ?? 0) >= 0.5;
  const last = (a) => a.filter((v) => v !== null).at(-1) ?? null;
  return '<div class="card' + (failing ? ' failing' : '') + '" data-source="' + esc(s.name) + '" data-breaker="' + s.breaker + '">' +
    '<h2>' + esc(s.name) + ' <span class="badge ' + s.breaker + '">' + s.breaker.replace('_', '-').toLowerCase() + '</span></h2>' +
    '<dl>' +
    '<dt>requests</dt><dd>' + (s.series.requestsPerSec.at(-1) ?? 0) + '/s now · ' + s.last15m.calls + ' in 15 min</dd>' +
    '<dt>errors</dt><dd class="errors">' + pct(last(s.series.errorRate)) + ' now · ' + pct(s.last15m.errorRate) + ' in 15 min</dd>' +
    '<dt>latency</dt><dd>p50 ' + ms(s.last15m.p50Ms) + ' · p99 ' + ms(s.last15m.p99Ms) + '</dd>' +
    '<dt>rate limit</dt><dd>' + s.rateLimitPerSec + '/s learned of ' + s.ceilingPerSec + '/s · headroom ' + s.headroomPerSec + '/s</dd>' +
    '<dt>cache hits</dt><dd>' + pct(s.cacheHitRatio) + '</dd>' +
    '<dt>schema drift</dt><dd>' + (s.drift.length === 0 ? 'none seen' : '<span class="warn">' + s.drift.length + ' path(s)</span>: ' + s.drift.slice(0, 3).map((d) => esc(d.kind + ' ' + d.path)).join(', ')) + '</dd>' +
    '</dl>' +
    '<div class="chart"><span>requests/s, last 15 min</span>' + chart([{ values: s.series.requestsPerSec, color: '#0969da' }]) + '</div>' +
    '<div class="chart"><span>error rate (0–100 %)</span>' + chart([{ values: s.series.errorRate, color: '#cf222e' }], 1) + '</div>' +
    '<div class="chart"><span>latency: p50 blue, p99 orange</span>' + chart([{ values: s.series.p99Ms, color: '#bc4c00' }, { values: s.series.p50Ms, color: '#0969da' }]) + '</div>' +
    '</div>';
}

async function refresh() {
  const token = sessionStorage.getItem(KEY);
  if (!token) { $('login').hidden = false; $('meta').textContent = 'signed out'; return; }
  try {
    const res = await fetch('/status/data', { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' });
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(KEY);
      $('login').hidden = false;
      $('login-error').textContent = res.status === 403 ? 'That token is not an admin token.' : 'That token is invalid or expired.';
      return;
    }
    const data = await res.json();
    $('login').hidden = true;
    const d = data.deliveries;
    $('meta').innerHTML = 'updated ' + new Date(data.generatedAt).toLocaleTimeString() + ' · redis ' + esc(data.redis) +
      ' · write queue: ' + (d ? d.QUEUED + ' queued, ' + d.DELIVERED + ' delivered, <span class="' + (d.FAILED > 0 ? 'warn' : '') + '">' + d.FAILED + ' dead letters</span>' : 'unknown');
    $('sources').innerHTML = data.sources.map(card).join('');
    document.body.dataset.loaded = 'true';
  } catch (e) {
    $('meta').textContent = 'cannot reach the server: ' + e.message;
  }
}
refresh();
setInterval(refresh, 5000);
</script>
</body></html>
`;
