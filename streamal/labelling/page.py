"""The labelling page: one HTML document with its style and script inline (no build step).

Served by :class:`~streamal.labelling.web.LabellingApp` at ``/label``; it reads
``/label/data`` every two seconds and posts to ``/labels``. ``{{title}}`` is replaced
by the app's title.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>
  :root { --ink: #1d2430; --muted: #5d6778; --line: #dde2ea; --accent: #2458c6;
          --good: #1f7a45; --bg: #f5f7fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--ink); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 1.2rem; align-items: center;
           padding: .7rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.05rem; margin: 0 .8rem 0 0; }
  .count { color: var(--muted); }
  .count b { color: var(--ink); font-size: 1.05rem; }
  .who { margin-left: auto; color: var(--muted); }
  .who input, #token input, #other { font: inherit; padding: .25rem .45rem;
           border: 1px solid var(--line); border-radius: 5px; }
  main { max-width: 980px; margin: 1.2rem auto; padding: 0 1rem; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px;
          padding: 1.1rem 1.3rem; }
  .head { display: flex; justify-content: space-between; align-items: baseline; }
  .head h2 { margin: 0; font-size: 1.15rem; }
  .tag { font-size: .8rem; padding: .1rem .5rem; border-radius: 99px; background: #eef2f9;
         color: var(--muted); margin-left: .4rem; }
  .cols { display: grid; grid-template-columns: 1fr 1fr; gap: 1.4rem; margin-top: .9rem; }
  h3 { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted);
       margin: .2rem 0 .4rem; }
  table { border-collapse: collapse; width: 100%; }
  td { padding: .22rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top;
       overflow-wrap: anywhere; }
  td.k { color: var(--muted); width: 40%; }
  .meta img { max-width: 100%; max-height: 220px; border-radius: 6px; display: block; }
  .guess { font-size: 1.05rem; margin: .2rem 0 .5rem; }
  .bar { display: flex; align-items: center; gap: .5rem; margin: .18rem 0; }
  .bar span.n { width: 7rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .bar .track { flex: 1; height: .55rem; background: #eef1f5; border-radius: 4px; }
  .bar .fill { height: 100%; background: var(--accent); border-radius: 4px; }
  .bar span.p { width: 3.2rem; text-align: right; color: var(--muted); }
  .choices { display: flex; flex-wrap: wrap; gap: .6rem; margin-top: 1.1rem;
             padding-top: 1rem; border-top: 1px solid var(--line); align-items: center; }
  button { font: inherit; border-radius: 7px; border: 1px solid var(--accent); cursor: pointer;
           padding: .5rem 1rem; background: var(--accent); color: #fff; min-width: 6rem; }
  button.skip { background: #fff; color: var(--accent); }
  button kbd { font: .78rem ui-monospace, monospace; background: rgba(255,255,255,.22);
               border-radius: 3px; padding: 0 .3rem; margin-right: .45rem; }
  button.skip kbd { background: #eef2f9; }
  #status { min-height: 1.4rem; margin: .7rem .2rem; color: var(--good); }
  #status.err { color: #b3261e; }
  .empty { text-align: center; color: var(--muted); padding: 2.5rem; }
  .next { color: var(--muted); font-size: .85rem; margin-top: .6rem; }
  #token { display: none; }
</style>
</head>
<body>
<header>
  <h1>{{title}}</h1>
  <span class="count">waiting <b id="pending">–</b></span>
  <span class="count">labelled today <b id="today">–</b></span>
  <span class="count">budget <b id="budget">–</b></span>
  <span id="token">token <input type="password" id="token-input" size="14"></span>
  <label class="who">annotator <input id="annotator" size="12" value="web"></label>
</header>
<main>
  <div id="status" role="status"></div>
  <div id="query" class="card"><div class="empty">Loading the open queries…</div></div>
  <div class="next" id="next"></div>
</main>
<script>
"use strict";
const state = { queries: [], skipped: new Set(), done: new Set(), counts: {},
                token: sessionStorage.getItem("streamal-token") || "" };
const $ = (id) => document.getElementById(id);
const pyStr = (v) => typeof v === "boolean" ? (v ? "True" : "False") : String(v);
const esc = (v) => String(v).replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
const fmt = (v) => typeof v === "number" && !Number.isInteger(v)
  ? String(Number(v.toPrecision(4))) : v;

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}
function current() {
  return state.queries.find((q) => !state.skipped.has(q.sample_id)
                                   && !state.done.has(q.sample_id));
}
function classesOf(q) {
  return Array.isArray(q.classes) ? q.classes : [];
}
function metaCell(v) {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  if (/^https?:\\/\\/\\S+\\.(png|jpe?g|gif|webp|svg)$/i.test(s))
    return '<a href="' + esc(s) + '" target="_blank" rel="noopener"><img src="' + esc(s)
           + '" alt="' + esc(s) + '"></a>';
  if (/^https?:\\/\\//i.test(s))
    return '<a href="' + esc(s) + '" target="_blank" rel="noopener">' + esc(s) + "</a>";
  return esc(s);
}
function rows(obj, cell) {
  return Object.entries(obj || {}).map(([k, v]) =>
    '<tr><td class="k">' + esc(k) + "</td><td>" + cell(v) + "</td></tr>").join("");
}
function render() {
  const c = state.counts;
  $("pending").textContent = c.pending ?? c.pending_on_page ?? "–";
  $("today").textContent = c.labelled_today ?? 0;
  $("budget").textContent = c.spent === undefined ? "–"
    : c.spent + " of " + c.target + (c.rate !== undefined ? " (rate " + c.rate + ")" : "");
  const q = current();
  const box = $("query");
  if (!q) {
    const n = state.skipped.size;
    box.innerHTML = '<div class="empty">No open query right now.'
      + (n ? ' ' + n + ' skipped — <a href="#" id="unskip">show them again</a>.' : "")
      + "</div>";
    if (n) $("unskip").onclick = (e) => { e.preventDefault(); state.skipped.clear(); render(); };
    $("next").textContent = "";
    return;
  }
  const proba = Object.entries(q.proba || {}).sort((a, b) => b[1] - a[1]);
  const guess = q.prediction === undefined ? null : q.prediction;
  const conf = guess === null ? null : (q.proba || {})[pyStr(guess)];
  const bars = proba.slice(0, 6).map(([k, p]) =>
    '<div class="bar"><span class="n">' + esc(k) + '</span><span class="track">'
    + '<div class="fill" style="width:' + (100 * p).toFixed(1) + '%"></div></span>'
    + '<span class="p">' + (100 * p).toFixed(0) + "%</span></div>").join("");
  const buttons = classesOf(q).slice(0, 9).map((y, i) =>
    '<button class="cls" data-i="' + i + '"><kbd>' + (i + 1) + "</kbd>" + esc(pyStr(y))
    + "</button>").join("");
  const other = classesOf(q).length ? ""
    : '<input id="other" placeholder="type a class, Enter">';
  box.innerHTML =
    '<div class="head"><h2>sample ' + esc(q.sample_id) + '<span class="tag">' + esc(q.purpose)
    + '</span></h2><span class="count">model v' + esc(q.model_version) + " · score "
    + Number(q.score).toFixed(2) + "</span></div>"
    + '<div class="cols"><div>'
    + (q.meta ? '<h3>item</h3><table class="meta">' + rows(q.meta, metaCell) + "</table>" : "")
    + "<h3>features</h3><table>" + rows(q.x, (v) => esc(fmt(v))) + "</table></div>"
    + "<div><h3>model's guess</h3><div class=\\"guess\\">"
    + (guess === null ? "none yet" : "<b>" + esc(pyStr(guess)) + "</b>"
       + (conf === undefined ? "" : " · confidence " + (100 * conf).toFixed(0) + "%"))
    + "</div>" + bars + "</div></div>"
    + '<div class="choices">' + buttons + other
    + '<button class="skip" id="skip"><kbd>s</kbd>skip</button></div>';
  box.querySelectorAll("button.cls").forEach((b) => {
    b.onclick = () => send(q, classesOf(q)[Number(b.dataset.i)]);
  });
  $("skip").onclick = () => skip(q);
  if (!classesOf(q).length) $("other").onkeydown = (e) => {
    if (e.key === "Enter" && e.target.value.trim()) send(q, e.target.value.trim());
  };
  const left = state.queries.filter((x) => !state.skipped.has(x.sample_id)
                                           && !state.done.has(x.sample_id)).length - 1;
  $("next").textContent = left > 0 ? left + " more after this one" : "";
}
function say(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "err" : "";
}
function skip(q) {
  state.skipped.add(q.sample_id);
  say("skipped " + q.sample_id);
  render();
}
async function send(q, y) {
  const label = { sample_id: q.sample_id, y: y, annotator: $("annotator").value || "web" };
  state.done.add(q.sample_id);
  render();
  try {
    const r = await fetch("/labels", { method: "POST", headers: headers(),
                                       body: JSON.stringify([label]) });
    const answer = await r.json();
    if (r.status === 401) { askToken(); throw new Error(answer.error); }
    if (!r.ok) throw new Error(answer.error || r.statusText);
    const res = answer.results[0];
    if (!res.accepted) throw new Error(res.reason);
    state.counts.labelled_today = (state.counts.labelled_today || 0) + 1;
    say("labelled " + q.sample_id + " as " + pyStr(y));
  } catch (err) {
    state.done.delete(q.sample_id);
    say("not sent: " + err.message, true);
  }
  render();
}
function askToken() {
  $("token").style.display = "inline";
  $("token-input").focus();
}
$("token-input").onchange = (e) => {
  state.token = e.target.value;
  sessionStorage.setItem("streamal-token", state.token);
  refresh();
};
async function refresh() {
  try {
    const r = await fetch("/label/data", { headers: headers() });
    if (r.status === 401) { askToken(); say("this service needs a token", true); return; }
    const data = await r.json();
    state.queries = data.queries;
    state.counts = data.counts;
    const open = new Set(data.queries.map((q) => q.sample_id));
    for (const id of state.done) if (!open.has(id)) state.done.delete(id);
    render();
  } catch (err) {
    say("cannot reach the service: " + err.message, true);
  }
}
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const q = current();
  if (!q) return;
  if (e.key === "s") { skip(q); return; }
  const i = Number(e.key) - 1;
  const classes = classesOf(q);
  if (Number.isInteger(i) && i >= 0 && i < Math.min(9, classes.length)) send(q, classes[i]);
});
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""
