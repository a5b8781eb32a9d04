/**
 * The dashboard page: one HTML file and one script, no framework and nothing fetched from
 * elsewhere (the page works offline; the CSP allows only this origin). The script polls
 * /api/summary each second and draws the tokens/s chart as an SVG polyline.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>heurist dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; background: #fafafa }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem } h2 { font-size: 1rem; margin: 1.2rem 0 .4rem }
  .muted { color: #666 } .cards { display: flex; gap: 1rem; flex-wrap: wrap }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem }
  .card b { display: block; font-size: 1.4rem }
  table { border-collapse: collapse; background: #fff; min-width: 30rem } td, th { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left }
  svg { background: #fff; border: 1px solid #ddd; border-radius: 6px }
  code { font-size: 12px }
</style>
</head>
<body>
<h1>heurist <span id="role"></span></h1>
<div class="muted">node <code id="address"></code> · epoch <span id="epoch">–</span> · updated <span id="updated">never</span></div>
<div class="cards">
  <div class="card">peers<b id="peer-count">0</b></div>
  <div class="card">jobs served<b id="jobs-served">0</b></div>
  <div class="card">jobs failed<b id="jobs-failed">0</b></div>
  <div class="card">tokens/s<b id="tps">0</b></div>
  <div class="card">points (LLM / image)<b id="points">–</b></div>
  <div class="card">earned (HEU)<b id="earned-total">0</b></div>
</div>
<h2>Tokens per second</h2>
<svg id="tps-chart" width="640" height="160" viewBox="0 0 640 160" role="img" aria-label="tokens per second over time"><polyline id="tps-line" fill="none" stroke="#2a6fdb" stroke-width="2" points=""></polyline></svg>
<h2>Peers</h2>
<table id="peers"><thead><tr><th>address</th><th>models</th><th>tokens/s</th><th>queue</th></tr></thead><tbody></tbody></table>
<h2>Earnings per epoch</h2>
<table id="earnings"><thead><tr><th>epoch</th><th>account</th><th>HEU</th><th>claimed</th></tr></thead><tbody></tbody></table>
<h2>Slashes</h2>
<table id="slashes"><thead><tr><th>miner</th><th>HEU</th><th>block</th><th>tx</th></tr></thead><tbody></tbody></table>
<script src="/dashboard.js"></script>
</body>
</html>
`

export const PAGE_JS = `'use strict'
function heu (wei) {
  const w = BigInt(wei); const whole = w / 10n ** 18n; const frac = (w % 10n ** 18n).toString().padStart(18, '0').slice(0, 6).replace(/0+$/, '')
  return frac === '' ? whole.toString() : whole + '.' + frac
}
function text (id, v) { document.getElementById(id).textContent = String(v) }
function rows (id, items, cells) {
  const body = document.querySelector('#' + id + ' tbody')
  body.replaceChildren(...items.map(function (it) {
    const tr = document.createElement('tr')
    for (const c of cells(it)) { const td = document.createElement('td'); td.textContent = String(c); tr.appendChild(td) }
    return tr
  }))
}
function chart (history) {
  const w = 640, h = 160, pad = 8
  const pts = history.slice(-120)
  const max = Math.max(1, ...pts.map(function (p) { return p.tokensPerSecond }))
  const t0 = pts.length ? pts[0].t : 0, t1 = pts.length ? pts[pts.length - 1].t : 1
  const span = Math.max(1, t1 - t0)
  document.getElementById('tps-line').setAttribute('points', pts.map(function (p) {
    return ((p.t - t0) / span * (w - 2 * pad) + pad).toFixed(1) + ',' + (h - pad - p.tokensPerSecond / max * (h - 2 * pad)).toFixed(1)
  }).join(' '))
  document.getElementById('tps-chart').dataset.points = String(pts.length)
  document.getElementById('tps-chart').dataset.max = String(max)
}
async function refresh () {
  try {
    const r = await fetch('/api/summary', { cache: 'no-store' })
    const s = await r.json()
    text('role', '· ' + s.role); text('address', s.address); text('epoch', s.epoch === null ? '–' : s.epoch)
    text('peer-count', s.peers.length); text('jobs-served', s.jobs.served); text('jobs-failed', s.jobs.failed)
    text('tps', s.tokensPerSecond.toFixed(1))
    text('points', s.points === null ? '–' : s.points.llama + ' / ' + s.points.waifu)
    text('earned-total', heu(s.earnings.reduce(function (a, e) { return a + BigInt(e.amount) }, 0n)))
    rows('peers', s.peers, function (p) { return [p.address, p.models.join(', '), p.tokensPerSecond.toFixed(1), p.queueDepth] })
    rows('earnings', s.earnings, function (e) { return [e.epoch, e.account, heu(e.amount), e.claimed ? 'yes' : 'no'] })
    rows('slashes', s.slashes, function (x) { return [x.miner, heu(x.amount), x.block, x.tx] })
    chart(s.history)
    text('updated', new Date().toLocaleTimeString())
  } catch (e) {
    text('updated', 'unreachable')
  }
}
refresh()
setInterval(refresh, 1000)
`
