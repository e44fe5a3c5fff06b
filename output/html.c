/* --html FILE: one self-contained HTML page of the whole run.
 *
 * The page is written while the run goes on, so that memory is bounded by
 * the sessions open at one time and not by the size of the capture:
 *   mt_html_new     the head (policy, style) and the empty page;
 *   during the run  inert <script type="application/json"> data blocks:
 *                   "d<N>.<k>" a chunk of the dialogue of session N,
 *                   "m<N>.<k>" message k of session N;
 *   mt_html_finish  the session index (kept in a temporary file until
 *                   then) and the script that builds the page from it.
 * The script builds a session's DOM only when it is opened, so a page of
 * 100,000 sessions stays usable.
 *
 * Nothing from the network is ever written as markup.  It goes through
 * mt_esc_json, and every < > & of a data block becomes a \u escape, so no
 * block can close its script element (nor open a comment).  The script puts
 * it into the page with textContent; HTML bodies go to iframes sandboxed
 * without scripts.  The Content-Security-Policy forbids every fetch and
 * every script but ours (by hash); the iframes inherit it, and their
 * srcdoc repeats it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "caps.h"
#include "html.h"
#include "output.h"

/* What the page keeps: MT_CAP_HTML_* in caps.h (docs/caps.md).  Exceeding
 * one truncates what is shown, with a note on the page saying how much was
 * left out (the analysis and the other outputs are not affected, so no
 * anomaly is raised). */
#define HTML_CHUNK 128u        /* dialogue entries per data block, */
#define HTML_CHUNK_BYTES 4096u /* or about this many bytes */

/* One session while it is open: what is still to be written. */
struct html_sess {
    uint64_t id;
    uint64_t ord; /* 1, 2, ... in order of first sight: names its blocks */
    /* the latest state of the session (the info itself is only valid during an event) */
    enum mt_proto proto;
    struct mt_endpoint client, server;
    int64_t start_us, end_us;
    uint64_t bytes[2], packets, ngaps, gap_bytes;
    bool handshake, complete, starttls, closed;
    uint32_t anomalies[MT_AN__COUNT];
    char *helo;
    GString *chunk; /* dialogue entries not yet written (JSON, comma-separated) */
    unsigned chunk_n;
    unsigned nchunks; /* dialogue blocks written */
    uint64_t lines, lines_left_out;
    unsigned nmsg; /* message blocks written */
    uint64_t msgs_left_out;
    uint64_t ncred, nsubj;
    GString *creds;    /* index: the first credentials (JSON objects, comma-separated) */
    GString *subjects; /* index: the first subjects (JSON strings, comma-separated) */
};

struct mt_html {
    FILE *f;
    FILE *index; /* temporary: the index records (escaped), comma-separated */
    uint64_t nindex;
    char *cwd, *page_dir; /* absolute: attachment links are relative to page_dir */
    bool extract;
    bool redact;      /* --redact */
    GHashTable *open; /* id -> struct html_sess */
    uint64_t next_ord;
    uint64_t body_total;
    GString *buf, *tmp; /* scratch */
    GMutex lock;        /* the CLI may feed several workers' events */
};

/* The page's style and script, one line of their source per literal.  The
 * script is the only one the page's policy lets run (by its hash); it must
 * never hold "</script" or "<!--".  Its data are the JSON blocks. */
/* clang-format off */
static const char page_css[] =
    ":root {\n"
    "  --ink: #1d232b; --muted: #5b6573; --line: #d5dae1; --bg: #f6f7f9; --card: #fff;\n"
    "  --c: #1456b8; --c-bg: #eef4fd; --s: #16723a; --s-bg: #eef8f1; --err: #b42318;\n"
    "  --note: #fff4cc; --note-ink: #6b4e00; --cred: #fde7ef; --cred-ink: #8a1c43;\n"
    "  --lane: #8d97a5;\n"
    "  --mono: ui-monospace, \"DejaVu Sans Mono\", \"Liberation Mono\", Menlo, Consolas, monospace;\n"
    "  --sans: system-ui, \"DejaVu Sans\", \"Liberation Sans\", Arial, sans-serif;\n"
    "}\n"
    "* { box-sizing: border-box; }\n"
    "body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 var(--sans); }\n"
    "header.top { background: #1f2a37; color: #fff; padding: 14px 24px 12px; }\n"
    "header.top h1 { margin: 0; font-size: 20px; font-weight: 600; letter-spacing: .2px; }\n"
    "header.top .sub { margin: 2px 0 0; color: #c3ccd8; font-size: 13px; }\n"
    "main { padding: 16px 24px 40px; max-width: 1500px; }\n"
    "h2 { font-size: 17px; margin: 22px 0 8px; }\n"
    "h3 { font-size: 15px; margin: 18px 0 6px; color: #2b3644; }\n"
    "h4 { font-size: 14px; margin: 0 0 8px; }\n"
    "h5 { font-size: 13px; margin: 12px 0 4px; color: var(--muted); text-transform: uppercase;\n"
    "     letter-spacing: .4px; }\n"
    "code, .mono { font-family: var(--mono); font-size: 12.5px; }\n"
    ".cards { display: flex; flex-wrap: wrap; gap: 10px; }\n"
    ".card { background: var(--card); border: 1px solid var(--line); border-radius: 6px;\n"
    "        padding: 8px 14px; min-width: 150px; }\n"
    ".card b { display: block; font-size: 22px; font-weight: 600; }\n"
    ".card span { color: var(--muted); font-size: 12.5px; }\n"
    "table { border-collapse: collapse; background: var(--card); }\n"
    "th, td { text-align: left; vertical-align: top; padding: 4px 10px; border-bottom: 1px solid var(--line); }\n"
    "th { font-weight: 600; color: var(--muted); font-size: 12.5px; }\n"
    "table.kv th { width: 11em; }\n"
    "table.grid { width: 100%; border: 1px solid var(--line); }\n"
    "td.secret { color: var(--cred-ink); font-weight: 600; overflow-wrap: anywhere; }\n"
    "td.nowrap { white-space: nowrap; }\n"
    "td.failure, .ev-cred .failure { color: var(--err); font-weight: 600; }\n"
    "a { color: var(--c); }\n"
    ".filterbar { display: flex; align-items: center; gap: 12px; margin: 6px 0 10px; }\n"
    ".filterbar input { flex: 0 1 520px; font: inherit; padding: 6px 10px; border: 1px solid #aeb6c2;\n"
    "                   border-radius: 5px; }\n"
    ".filterbar span { color: var(--muted); }\n"
    "details.sess { scroll-margin-top: 10px; background: var(--card); border: 1px solid var(--line); border-radius: 6px;\n"
    "               margin: 0 0 6px; }\n"
    "details.sess[open] { border-color: #9fb0c6; box-shadow: 0 1px 4px rgba(0,0,0,.06); }\n"
    "details.sess > summary { cursor: pointer; padding: 7px 12px; list-style: none; display: flex;\n"
    "                         flex-wrap: wrap; gap: 4px 14px; align-items: baseline; }\n"
    "details.sess > summary::-webkit-details-marker { display: none; }\n"
    "details.sess > summary::before { content: \"\\25B8\"; color: var(--muted); width: 10px; }\n"
    "details.sess[open] > summary::before { content: \"\\25BE\"; }\n"
    "details.sess > summary:hover { background: #f2f5f9; }\n"
    ".sid { font-family: var(--mono); color: var(--muted); min-width: 4.5em; }\n"
    ".sess > summary > .badge:first-of-type { min-width: 3.6em; text-align: center; }\n"
    ".ep { font-family: var(--mono); font-size: 13px; min-width: 21em; }\n"
    ".when { color: var(--muted); font-size: 12.5px; min-width: 12em; }\n"
    ".tags { display: inline-flex; flex-wrap: wrap; gap: 4px; }\n"
    ".line2 { flex-basis: 100%; padding-left: 24px; color: var(--muted); font-size: 12.5px;\n"
    "         overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }\n"
    ".line2 .u { color: var(--cred-ink); }\n"
    ".badge { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 12px;\n"
    "         font-weight: 600; border: 1px solid transparent; white-space: nowrap; }\n"
    ".p-smtp { background: #e3ecfb; color: #1a4d99; }\n"
    ".p-pop3 { background: #e6f4ea; color: #1c6b36; }\n"
    ".p-imap { background: #f1e7fb; color: #5b2c91; }\n"
    ".p-tls, .p-tcp, .p-unknown { background: #eceff3; color: #4a5360; }\n"
    ".b-cred { background: var(--cred); color: var(--cred-ink); }\n"
    ".b-msg { background: #e8f1ff; color: #22477a; }\n"
    ".b-warn { background: #fff1e0; color: #8a4b00; }\n"
    ".b-fail { background: #fde8e6; color: var(--err); }\n"
    ".b-tls { background: #e7f6f6; color: #0c5c5c; }\n"
    ".sbody { padding: 4px 16px 16px; border-top: 1px solid var(--line); }\n"
    ".ladder { font-family: var(--mono); font-size: 12.5px; background: var(--card);\n"
    "          border: 1px solid var(--line); border-radius: 6px; padding: 0 0 8px; overflow-x: auto; }\n"
    ".lrow { display: grid; grid-template-columns: 7.5em 10px minmax(0, 1fr) 10px 4.5em; }\n"
    ".lrow > .t, .lrow > .pk { color: #8a93a0; padding: 3px 8px 0; font-size: 11.5px; white-space: nowrap; }\n"
    ".lrow > .pk { text-align: right; }\n"
    ".lrow > .lane.l { border-right: 2px solid var(--lane); }\n"
    ".lrow > .lane.r { border-left: 2px solid var(--lane); }\n"
    ".lhead { position: sticky; top: 0; background: #f3f5f8; border-bottom: 1px solid var(--line);\n"
    "         z-index: 1; }\n"
    ".lhead .mid { display: flex; justify-content: space-between; padding: 6px 0; gap: 10px;\n"
    "              font-family: var(--sans); font-weight: 600; font-size: 12.5px; }\n"
    ".lhead .mid span { padding: 0 10px; }\n"
    ".lhead .mid span:last-child { text-align: right; }\n"
    ".lhead .mid small { display: block; font-family: var(--mono); font-weight: 400; color: var(--muted); }\n"
    ".msgcell { padding: 3px 0 2px; min-width: 0; }\n"
    ".msgcell .txt { padding: 0 12px; white-space: pre-wrap; overflow-wrap: anywhere; }\n"
    ".c2s .txt { color: var(--c); }\n"
    ".s2c .txt { color: var(--s); text-align: left; }\n"
    ".s2c.err .txt { color: var(--err); }\n"
    ".who { font-weight: 700; opacity: .75; }\n"
    ".arrow { position: relative; height: 0; border-top: 2px solid currentColor; margin: 3px 7px 3px 0; }\n"
    ".c2s .arrow { color: var(--c); margin: 3px 7px 3px 0; }\n"
    ".s2c .arrow { color: var(--s); margin: 3px 0 3px 7px; }\n"
    ".s2c.err .arrow { color: var(--err); }\n"
    ".c2s .arrow::after, .s2c .arrow::before { content: \"\"; position: absolute; top: -6px;\n"
    "  border: 5px solid transparent; }\n"
    ".c2s .arrow::after { right: -9px; border-left: 8px solid currentColor; border-right: 0; }\n"
    ".s2c .arrow::before { left: -9px; border-right: 8px solid currentColor; border-left: 0; }\n"
    ".note { margin: 2px 12px 3px; padding: 2px 8px; background: var(--note); color: var(--note-ink);\n"
    "        border-radius: 4px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; }\n"
    ".note b { font-family: var(--sans); }\n"
    ".evbox { margin: 4px 12px; padding: 3px 10px; border-radius: 4px; font-family: var(--sans);\n"
    "         font-size: 12.5px; overflow-wrap: anywhere; }\n"
    ".ev-cred { background: var(--cred); color: var(--cred-ink); border: 1px solid #f3b8cc; }\n"
    ".ev-msg { background: #e8f1ff; color: #22477a; border: 1px solid #bcd3f5; }\n"
    ".ev-tls { background: #e7f6f6; color: #0c5c5c; border: 1px dashed #7cc; text-align: center; }\n"
    ".ev-an { background: #fff1e0; color: #8a4b00; border: 1px solid #f3cf9f; }\n"
    ".ev-more { background: #f0f2f5; color: var(--muted); text-align: center; }\n"
    ".evbox code { font-size: 12px; }\n"
    "article.msg { background: var(--card); border: 1px solid var(--line); border-radius: 6px;\n"
    "              padding: 12px 14px; margin: 10px 0; }\n"
    "article.msg table.kv td { overflow-wrap: anywhere; }\n"
    "ul.mime { list-style: none; margin: 0; padding: 0; font-family: var(--mono); font-size: 12.5px; }\n"
    "ul.mime li { padding: 2px 0; border-bottom: 1px dotted var(--line); }\n"
    "ul.mime .ct { color: #5b2c91; font-weight: 600; }\n"
    "ul.mime .dim { color: var(--muted); }\n"
    "pre.body { background: #fbfbfc; border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px;\n"
    "           margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; max-height: 480px;\n"
    "           overflow: auto; font: 12.5px/1.45 var(--mono); }\n"
    "iframe.html { width: 100%; height: 320px; border: 1px solid var(--line); border-radius: 4px;\n"
    "              background: #fff; resize: vertical; }\n"
    ".small { font-size: 12.5px; color: var(--muted); }\n"
    ".warn { color: #8a4b00; }\n"
    "button { font: inherit; padding: 4px 12px; border: 1px solid #aeb6c2; border-radius: 5px;\n"
    "         background: #fff; cursor: pointer; }\n"
    "button:hover { background: #f2f5f9; }\n"
    "details.sub > summary { cursor: pointer; color: var(--muted); font-size: 12.5px; }\n"
    ".empty { color: var(--muted); font-style: italic; }\n"
    "dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr) max-content minmax(0, 1fr);\n"
    "           gap: 3px 14px; margin: 10px 0 4px; font-size: 13px; }\n"
    "dl.facts dt { color: var(--muted); font-weight: 600; font-size: 12.5px; }\n"
    "dl.facts dd { margin: 0; overflow-wrap: anywhere; }\n"
    "dl.facts dt.wide { grid-column: 1; }\n"
    "dl.facts dd.wide { grid-column: span 3; }\n"
    "td.pre { white-space: pre-wrap; }\n"
    ;

static const char page_js[] =
    "(function () {\n"
    "'use strict';\n"
    "/* Everything shown comes from the inert JSON blocks above and enters the\n"
    "   page through textContent only (never innerHTML): network data stays text.\n"
    "   HTML bodies are shown in iframes sandboxed without scripts. */\n"
    "var PAGE = 200;                        /* session rows added at a time */\n"
    "var CREDS_SHOWN = 500;                 /* rows of the credentials table */\n"
    "var BODIES_OPEN = 20;                  /* message bodies shown open per session */\n"
    "\n"
    "function $(id) { return document.getElementById(id); }\n"
    "function el(tag, cls, text) {\n"
    "  var e = document.createElement(tag);\n"
    "  if (cls) e.className = cls;\n"
    "  if (text !== undefined && text !== null) e.textContent = String(text);\n"
    "  return e;\n"
    "}\n"
    "function add(parent, child) { parent.appendChild(child); return child; }\n"
    "function data(id) {\n"
    "  var s = $(id);\n"
    "  if (!s || s.type !== 'application/json') return null;\n"
    "  try { return JSON.parse(s.textContent); } catch (e) { return null; }\n"
    "}\n"
    "function plural(n, one, many) { return n + ' ' + (n === 1 ? one : (many || one + 's')); }\n"
    "function pad(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }\n"
    "function fmtTime(us) {\n"
    "  var ms = Math.floor(us / 1000), d = new Date(ms);\n"
    "  if (isNaN(d.getTime())) return String(us);\n"
    "  var iso = d.toISOString();\n"
    "  return iso.slice(0, 10) + ' ' + iso.slice(11, 19) + '.' + pad(((us % 1e6) + 1e6) % 1e6, 6) + ' UTC';\n"
    "}\n"
    "function fmtClock(us) { return fmtTime(us).slice(11, 23); }\n"
    "function fmtDur(us) {\n"
    "  if (us < 0) us = 0;\n"
    "  if (us < 1000) return us + ' \\u00b5s';\n"
    "  if (us < 1e6) return (us / 1000).toFixed(1) + ' ms';\n"
    "  if (us < 120e6) return (us / 1e6).toFixed(2) + ' s';\n"
    "  if (us < 7200e6) return (us / 60e6).toFixed(1) + ' min';\n"
    "  return (us / 3600e6).toFixed(1) + ' h';\n"
    "}\n"
    "function fmtBytes(n) {\n"
    "  if (n < 1024) return n + ' B';\n"
    "  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';\n"
    "  if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';\n"
    "  return (n / 1073741824).toFixed(2) + ' GiB';\n"
    "}\n"
    "function ep(ip, port) { return (ip.indexOf(':') >= 0 ? '[' + ip + ']' : ip) + ':' + port; }\n"
    "/* Links only to the saved files, relative to this page. */\n"
    "function safeHref(h) { return typeof h === 'string' && /^\\.{1,2}\\//.test(h) ? h : null; }\n"
    "function fileLink(href, label) {\n"
    "  var h = safeHref(href);\n"
    "  if (!h) return null;\n"
    "  var a = el('a', null, label);\n"
    "  a.href = h;\n"
    "  a.rel = 'noopener noreferrer';\n"
    "  a.setAttribute('download', '');\n"
    "  a.title = 'saved by -x: ' + decodeURIComponent(h);\n"
    "  return a;\n"
    "}\n"
    "function isErr(code) { return /^[45]/.test(code || '') || code === '-ERR' || code === 'NO' || code === 'BAD'; }\n"
    "function protoBadge(p) { return el('span', 'badge p-' + (/^[a-z0-9]+$/.test(p) ? p : 'tcp'), p.toUpperCase()); }\n"
    "function kv(table, k, v) {\n"
    "  if (v === undefined || v === null || v === '') return null;\n"
    "  var tr = add(table, el('tr'));\n"
    "  add(tr, el('th', null, k));\n"
    "  var td = add(tr, el('td'));\n"
    "  if (v instanceof Node) td.appendChild(v); else td.textContent = String(v);\n"
    "  return td;\n"
    "}\n"
    "\n"
    "var meta = data('meta') || {};\n"
    "var S = data('index') || [];\n"
    "S.sort(function (a, b) { return a.t0 - b.t0 || a.id - b.id || a.o - b.o; });\n"
    "var byId = Object.create(null);\n"
    "S.forEach(function (s) { if (!(s.id in byId)) byId[s.id] = s; });\n"
    "\n"
    "/* ---- header and overview ---- */\n"
    "var sub = $('sub');\n"
    "sub.textContent = 'Generated by mailtap ' + (meta.version || '') +\n"
    "  (meta.generated ? ' on ' + fmtTime(meta.generated).slice(0, 19) + ' UTC' : '') +\n"
    "  '. Everything below was seen passively on the wire; nothing on this page is fetched from anywhere.';\n"
    "\n"
    "var app = $('app');\n"
    "var totals = { sessions: S.length, creds: 0, msgs: 0, anomalies: 0, byProto: {} };\n"
    "S.forEach(function (s) {\n"
    "  totals.creds += s.nc; totals.msgs += s.nm + s.mx;\n"
    "  for (var k in s.an) totals.anomalies += s.an[k];\n"
    "  totals.byProto[s.p] = (totals.byProto[s.p] || 0) + 1;\n"
    "});\n"
    "var cards = add(app, el('section', 'cards'));\n"
    "function card(n, label, detail) {\n"
    "  var c = add(cards, el('div', 'card'));\n"
    "  add(c, el('b', null, n));\n"
    "  add(c, el('span', null, label + (detail ? ' \\u00b7 ' + detail : '')));\n"
    "}\n"
    "card(totals.sessions, 'sessions', Object.keys(totals.byProto).sort().map(function (p) {\n"
    "  return p.toUpperCase() + ' ' + totals.byProto[p];\n"
    "}).join(', '));\n"
    "card(totals.creds, 'credentials');\n"
    "card(totals.msgs, 'messages');\n"
    "card(totals.anomalies, 'anomalies');\n"
    "\n"
    "/* ---- credentials of the whole capture ---- */\n"
    "var credRows = [];\n"
    "S.forEach(function (s) { s.cr.forEach(function (c) { credRows.push([s, c]); }); });\n"
    "if (credRows.length) {\n"
    "  add(app, el('h2', null, 'Credentials found'));\n"
    "  var ct = add(app, el('table', 'grid'));\n"
    "  var hr = add(ct, el('tr'));\n"
    "  ['Session', 'Protocol', 'Client \\u2192 server', 'Mechanism', 'User', 'Secret', 'Result'].forEach(function (h) {\n"
    "    add(hr, el('th', null, h));\n"
    "  });\n"
    "  credRows.slice(0, CREDS_SHOWN).forEach(function (r) {\n"
    "    var s = r[0], c = r[1];\n"
    "    var tr = add(ct, el('tr'));\n"
    "    var a = el('a', null, '#' + s.id);\n"
    "    a.href = '#session=' + s.id;\n"
    "    add(add(tr, el('td', 'mono')), a);\n"
    "    add(add(tr, el('td')), protoBadge(s.p));\n"
    "    add(tr, el('td', 'mono nowrap', ep(s.c, s.cp) + ' \\u2192 ' + ep(s.s, s.sp)));\n"
    "    add(tr, el('td', 'mono', c.m || ''));\n"
    "    add(tr, el('td', 'mono', c.u || (c.az ? 'authzid ' + c.az : '')));\n"
    "    add(tr, el('td', 'mono secret', secretOf(c)));\n"
    "    add(tr, el('td', c.r === 'failure' ? 'failure' : null, c.r || ''));\n"
    "  });\n"
    "  var more = totals.creds - Math.min(credRows.length, CREDS_SHOWN);\n"
    "  if (more > 0) add(app, el('p', 'small', '... ' + plural(more, 'more credential') + ' in the sessions below.'));\n"
    "}\n"
    "function secretOf(c) {\n"
    "  if (c.pw !== undefined) return c.pw;\n"
    "  if (c.tk !== undefined) return 'token ' + c.tk;\n"
    "  if (c.hs !== undefined) return 'hash ' + c.hs;\n"
    "  if (c.rs !== undefined) return 'response ' + c.rs;\n"
    "  return '';\n"
    "}\n"
    "\n"
    "/* ---- the session list ---- */\n"
    "add(app, el('h2', null, 'Sessions'));\n"
    "var bar = add(app, el('div', 'filterbar'));\n"
    "var filter = add(bar, el('input'));\n"
    "filter.type = 'search';\n"
    "filter.id = 'filter';\n"
    "filter.placeholder = 'Filter: address, port, user, subject, protocol, #id \\u2026';\n"
    "filter.setAttribute('aria-label', 'Filter sessions');\n"
    "var countEl = add(bar, el('span'));\n"
    "var list = add(app, el('div'));\n"
    "list.id = 'sessions';\n"
    "var moreBtn = add(app, el('button'));\n"
    "moreBtn.id = 'more';\n"
    "if (!S.length) add(list, el('p', 'empty', 'No TCP session was seen in this capture.'));\n"
    "\n"
    "function hay(s) {\n"
    "  if (s._hay === undefined) {\n"
    "    var parts = ['#' + s.id, s.p, ep(s.c, s.cp), ep(s.s, s.sp), s.helo || ''];\n"
    "    s.cr.forEach(function (c) { parts.push(c.u || '', c.m || '', c.az || ''); });\n"
    "    s.sj.forEach(function (j) { parts.push(j); });\n"
    "    if (s.tls) parts.push('starttls');\n"
    "    if (!s.ok) parts.push('incomplete');\n"
    "    Object.keys(s.an).forEach(function (k) { parts.push(k); });\n"
    "    s._hay = parts.join('\\n').toLowerCase();\n"
    "  }\n"
    "  return s._hay;\n"
    "}\n"
    "var shown = S, rendered = 0;\n"
    "function applyFilter() {\n"
    "  var terms = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);\n"
    "  shown = !terms.length ? S : S.filter(function (s) {\n"
    "    var h = hay(s);\n"
    "    return terms.every(function (t) {\n"
    "      if (/^#\\d+$/.test(t)) return '#' + s.id === t;\n"
    "      return h.indexOf(t) >= 0;\n"
    "    });\n"
    "  });\n"
    "  list.textContent = '';\n"
    "  rendered = 0;\n"
    "  renderMore();\n"
    "}\n"
    "function renderMore() {\n"
    "  var end = Math.min(shown.length, rendered + PAGE);\n"
    "  for (; rendered < end; rendered++) list.appendChild(row(shown[rendered]));\n"
    "  countEl.textContent = shown.length === S.length ? plural(S.length, 'session')\n"
    "    : shown.length + ' of ' + plural(S.length, 'session') + ' match';\n"
    "  var left = shown.length - rendered;\n"
    "  moreBtn.hidden = left <= 0;\n"
    "  moreBtn.textContent = 'Show ' + Math.min(PAGE, left) + ' more (' + left + ' not shown)';\n"
    "}\n"
    "moreBtn.addEventListener('click', renderMore);\n"
    "var timer = 0;\n"
    "filter.addEventListener('input', function () {\n"
    "  clearTimeout(timer);\n"
    "  timer = setTimeout(applyFilter, S.length > 5000 ? 200 : 60);\n"
    "});\n"
    "\n"
    "function row(s) {\n"
    "  var d = el('details', 'sess');\n"
    "  d.id = 'session-' + s.id;\n"
    "  var sm = add(d, el('summary'));\n"
    "  add(sm, el('span', 'sid', '#' + s.id));\n"
    "  add(sm, protoBadge(s.p));\n"
    "  add(sm, el('span', 'ep', ep(s.c, s.cp) + ' \\u2192 ' + ep(s.s, s.sp)));\n"
    "  add(sm, el('span', 'when', fmtClock(s.t0) + ' \\u00b7 ' + fmtDur(s.t1 - s.t0)));\n"
    "  var tags = add(sm, el('span', 'tags'));\n"
    "  if (s.nc) add(tags, el('span', 'badge b-cred', plural(s.nc, 'credential')));\n"
    "  var failed = s.cr.filter(function (c) { return c.r === 'failure'; }).length;\n"
    "  if (failed) add(tags, el('span', 'badge b-fail', failed === 1 ? 'login failed' : failed + ' logins failed'));\n"
    "  if (s.nm + s.mx) add(tags, el('span', 'badge b-msg', plural(s.nm + s.mx, 'message')));\n"
    "  if (s.tls) add(tags, el('span', 'badge b-tls', 'STARTTLS'));\n"
    "  if (!s.ok) add(tags, el('span', 'badge b-warn', s.gaps ? plural(s.gaps, 'gap') : 'incomplete'));\n"
    "  var na = 0;\n"
    "  for (var k in s.an) na += s.an[k];\n"
    "  if (na) add(tags, el('span', 'badge b-warn', plural(na, 'anomaly', 'anomalies')));\n"
    "  var l2 = [];\n"
    "  s.cr.forEach(function (c) { if (c.u) l2.push(['u', 'user ' + c.u]); });\n"
    "  s.sj.forEach(function (j) { l2.push(['', '\\u201c' + j + '\\u201d']); });\n"
    "  if (l2.length) {\n"
    "    var line = add(sm, el('span', 'line2'));\n"
    "    l2.forEach(function (x, i) {\n"
    "      if (i) line.appendChild(document.createTextNode(' \\u00b7 '));\n"
    "      add(line, el('span', x[0], x[1]));\n"
    "    });\n"
    "  }\n"
    "  var built = false;\n"
    "  d.build = function () {\n"
    "    if (!built) {\n"
    "      built = true;\n"
    "      d.appendChild(sessionBody(s));\n"
    "    }\n"
    "  };\n"
    "  d.addEventListener('toggle', function () { if (d.open) d.build(); });\n"
    "  sm.addEventListener('click', function () {\n"
    "    /* about to open: the address now names this session */\n"
    "    if (!d.open) { try { history.replaceState(null, '', '#session=' + s.id); } catch (e) { /* ignored */ } }\n"
    "  });\n"
    "  return d;\n"
    "}\n"
    "\n"
    "function sessionBody(s) {\n"
    "  var b = el('div', 'sbody');\n"
    "  var f = add(b, el('dl', 'facts'));\n"
    "  function fact(k, v, cls) {\n"
    "    if (v === undefined || v === null || v === '') return;\n"
    "    add(f, el('dt', /\\bwide\\b/.test(cls || '') ? 'wide' : null, k));\n"
    "    add(f, el('dd', cls, v));\n"
    "  }\n"
    "  fact('Client', ep(s.c, s.cp) + (s.helo ? '  (HELO/EHLO ' + s.helo + ')' : ''), 'mono');\n"
    "  fact('Server', ep(s.s, s.sp) + '  ' + s.p.toUpperCase() + (s.tls ? ', STARTTLS' : ''), 'mono');\n"
    "  fact('Time', fmtTime(s.t0) + ' \\u2192 ' + fmtTime(s.t1).slice(11) + ' (' + fmtDur(s.t1 - s.t0) + ')');\n"
    "  fact('Traffic', 'client \\u2192 server ' + fmtBytes(s.bc) + ', server \\u2192 client ' + fmtBytes(s.bs) +\n"
    "       ', ' + plural(s.pk, 'packet'));\n"
    "  var st = [];\n"
    "  st.push(s.hs ? 'handshake seen' : 'picked up mid-stream');\n"
    "  st.push(s.cl ? 'closed (FIN/RST)' : (s.ended ? 'not closed' : 'still open when the capture ended'));\n"
    "  st.push(s.ok ? 'complete' : 'incomplete');\n"
    "  if (s.gaps) st.push(plural(s.gaps, 'gap') + ' (' + fmtBytes(s.gapb) + ' missing)');\n"
    "  fact('State', st.join(', '));\n"
    "  var an = Object.keys(s.an).map(function (k) { return k + ' \\u00d7' + s.an[k]; });\n"
    "  fact('Anomalies', an.join(', '), 'warn wide');\n"
    "  if (s.caps && s.caps.length) fact('Capabilities', s.caps.join(' \\u00b7 '), 'mono wide');\n"
    "\n"
    "  add(b, el('h3', null, 'Dialogue'));\n"
    "  b.appendChild(ladder(s));\n"
    "\n"
    "  if (s.cr.length) {\n"
    "    add(b, el('h3', null, 'Credentials'));\n"
    "    var ct = add(b, el('table', 'grid'));\n"
    "    var hr = add(ct, el('tr'));\n"
    "    ['Packet', 'Mechanism', 'User', 'Secret', 'Details', 'Result'].forEach(function (h) { add(hr, el('th', null, h)); });\n"
    "    s.cr.forEach(function (c) {\n"
    "      var tr = add(ct, el('tr'));\n"
    "      add(tr, el('td', 'mono', '#' + c.p));\n"
    "      add(tr, el('td', 'mono', c.m || ''));\n"
    "      add(tr, el('td', 'mono', c.u || ''));\n"
    "      add(tr, el('td', 'mono secret', secretOf(c)));\n"
    "      var det = [];\n"
    "      if (c.az) det.push('authzid ' + c.az);\n"
    "      if (c.ch) det.push('challenge ' + c.ch);\n"
    "      if (c.dm) det.push('domain ' + c.dm);\n"
    "      if (c.ws) det.push('workstation ' + c.ws);\n"
    "      if (c.hs && c.pw !== undefined) det.push('hash ' + c.hs);\n"
    "      add(tr, el('td', 'mono pre', det.join('\\n')));\n"
    "      add(tr, el('td', c.r === 'failure' ? 'failure' : null, c.r || ''));\n"
    "    });\n"
    "    if (s.nc > s.cr.length) add(b, el('p', 'small', '... ' + plural(s.nc - s.cr.length, 'more credential') + ' in the dialogue.'));\n"
    "  }\n"
    "\n"
    "  var nm = s.nm + s.mx;\n"
    "  if (nm) {\n"
    "    add(b, el('h3', null, 'Messages (' + nm + ')'));\n"
    "    for (var i = 1; i <= s.nm; i++) {\n"
    "      var m = data('m' + s.o + '.' + i);\n"
    "      if (m) b.appendChild(messageCard(s, m, i));\n"
    "    }\n"
    "    if (s.mx) add(b, el('p', 'small', '... ' + plural(s.mx, 'more message') + ' not shown (at most ' + meta.msgs_max + ' per session).'));\n"
    "  }\n"
    "  return b;\n"
    "}\n"
    "\n"
    "/* ---- the ladder: client and server lifelines, one arrow per command or reply ---- */\n"
    "function lrow(cls, t, t0, pkt) {\n"
    "  var r = el('div', 'lrow ' + cls);\n"
    "  var te = add(r, el('div', 't', t === undefined ? '' : '+' + ((t - t0) / 1e6).toFixed(6)));\n"
    "  if (t !== undefined) te.title = fmtTime(t);\n"
    "  add(r, el('div', 'lane l'));\n"
    "  var mid = add(r, el('div', 'msgcell'));\n"
    "  add(r, el('div', 'lane r'));\n"
    "  add(r, el('div', 'pk', pkt ? '#' + pkt : ''));\n"
    "  return [r, mid];\n"
    "}\n"
    "function noteEl(label, text) {\n"
    "  var n = el('div', 'note');\n"
    "  add(n, el('b', null, label + ' '));\n"
    "  n.appendChild(document.createTextNode(text));\n"
    "  return n;\n"
    "}\n"
    "function ladder(s) {\n"
    "  var L = el('div', 'ladder');\n"
    "  var h = add(L, el('div', 'lrow lhead'));\n"
    "  add(h, el('div', 't', 'time (s)'));\n"
    "  add(h, el('div', 'lane l'));\n"
    "  var mid = add(h, el('div', 'mid'));\n"
    "  var cl = add(mid, el('span', null, 'Client'));\n"
    "  add(cl, el('small', null, ep(s.c, s.cp)));\n"
    "  var sv = add(mid, el('span', null, 'Server'));\n"
    "  add(sv, el('small', null, ep(s.s, s.sp)));\n"
    "  add(h, el('div', 'lane r'));\n"
    "  add(h, el('div', 'pk', 'packet'));\n"
    "  var n = 0;\n"
    "  for (var k = 1; k <= s.nd; k++) {\n"
    "    var chunk = data('d' + s.o + '.' + k) || [];\n"
    "    chunk.forEach(function (e) { n++; L.appendChild(entryRow(s, e)); });\n"
    "  }\n"
    "  if (!n && !s.lx) {\n"
    "    var r0 = lrow('ev', undefined, s.t0, 0);\n"
    "    add(r0[1], el('div', 'evbox ev-more', s.p === 'tls' ? 'Encrypted (TLS): no dialogue to show.'\n"
    "      : 'No command or reply was recognised in this session.'));\n"
    "    L.appendChild(r0[0]);\n"
    "  }\n"
    "  if (s.lx) {\n"
    "    var r1 = lrow('ev', undefined, s.t0, 0);\n"
    "    add(r1[1], el('div', 'evbox ev-more', '... ' + plural(s.lx, 'more line') + ' not shown (at most ' +\n"
    "      meta.dialogue_max + ' per session)'));\n"
    "    L.appendChild(r1[0]);\n"
    "  }\n"
    "  return L;\n"
    "}\n"
    "function entryRow(s, e) {\n"
    "  var r, box;\n"
    "  switch (e.k) {\n"
    "  case 'c':\n"
    "    r = lrow('c2s', e.t, s.t0, e.p);\n"
    "    var tx = add(r[1], el('div', 'txt'));\n"
    "    add(tx, el('span', 'who', 'C: '));\n"
    "    tx.appendChild(document.createTextNode(e.l));\n"
    "    add(r[1], el('div', 'arrow'));\n"
    "    if (e.n) r[1].appendChild(noteEl(e.a ? 'AUTH step, decoded:' : 'decoded:', e.n));\n"
    "    return r[0];\n"
    "  case 'r':\n"
    "    r = lrow('s2c' + (isErr(e.c) ? ' err' : ''), e.t, s.t0, e.p);\n"
    "    if (e.q) r[0].title = 'reply to the command in packet ' + e.q;\n"
    "    var tr = add(r[1], el('div', 'txt'));\n"
    "    var lines = e.L.length ? e.L : [e.c || ''];\n"
    "    lines.forEach(function (l, i) {\n"
    "      if (i) tr.appendChild(document.createTextNode('\\n'));\n"
    "      add(tr, el('span', 'who', 'S: '));\n"
    "      tr.appendChild(document.createTextNode(l));\n"
    "    });\n"
    "    if (e.lx) tr.appendChild(document.createTextNode('\\n... ' + plural(e.lx, 'more line')));\n"
    "    add(r[1], el('div', 'arrow'));\n"
    "    if (e.n) r[1].appendChild(noteEl(e.c === '+' || e.c === '334' ? 'challenge, decoded:' : 'decoded:', e.n));\n"
    "    return r[0];\n"
    "  case 'cred':\n"
    "    r = lrow('ev', e.t, s.t0, e.p);\n"
    "    box = add(r[1], el('div', 'evbox ev-cred'));\n"
    "    var head = add(box, el('b', null, 'Credential (' + (e.m || '?') + ', '));\n"
    "    add(head, el('span', e.r === 'failure' ? 'failure' : null, e.r || 'unknown'));\n"
    "    head.appendChild(document.createTextNode('): '));\n"
    "    var parts = [];\n"
    "    if (e.u !== undefined) parts.push('user ' + e.u);\n"
    "    var sec = secretOf(e);\n"
    "    if (sec) parts.push(e.pw !== undefined ? 'password ' + sec : sec);\n"
    "    if (e.ch !== undefined) parts.push('challenge ' + e.ch);\n"
    "    if (e.az) parts.push('authzid ' + e.az);\n"
    "    add(box, el('code', null, parts.join('   ')));\n"
    "    return r[0];\n"
    "  case 'm':\n"
    "    r = lrow('ev', e.t, s.t0, e.p);\n"
    "    box = add(r[1], el('div', 'evbox ev-msg'));\n"
    "    var label = 'Message ' + e.i + ' (' + e.src + ', ' + fmtBytes(e.sz) + ')' + (e.sj !== undefined ? ': \\u201c' + e.sj + '\\u201d' : '');\n"
    "    if (e.b) {\n"
    "      var a = add(box, el('a', null, label));\n"
    "      a.href = '#msg-' + s.o + '-' + e.b;\n"
    "      a.addEventListener('click', function (ev) {\n"
    "        var target = $('msg-' + s.o + '-' + e.b);\n"
    "        if (target) { ev.preventDefault(); target.scrollIntoView({ block: 'start' }); }\n"
    "      });\n"
    "    } else {\n"
    "      box.textContent = label;\n"
    "    }\n"
    "    return r[0];\n"
    "  case 'tls':\n"
    "    r = lrow('ev', e.t, s.t0, e.p);\n"
    "    add(r[1], el('div', 'evbox ev-tls', 'TLS starts here: the rest of the session is encrypted'));\n"
    "    return r[0];\n"
    "  case 'an':\n"
    "    r = lrow('ev', e.t, s.t0, e.p);\n"
    "    add(r[1], el('div', 'evbox ev-an', 'Anomaly ' + e.name + ' (' + (e.dir === 'c2s' ? 'client \\u2192 server' : 'server \\u2192 client') + ')' + (e.d ? ': ' + e.d : '')));\n"
    "    return r[0];\n"
    "  default:\n"
    "    r = lrow('ev', e.t, s.t0, e.p);\n"
    "    add(r[1], el('div', 'evbox ev-more', String(e.k)));\n"
    "    return r[0];\n"
    "  }\n"
    "}\n"
    "\n"
    "/* ---- messages ---- */\n"
    "function messageCard(s, m, i) {\n"
    "  var a = el('article', 'msg');\n"
    "  a.id = 'msg-' + s.o + '-' + i;\n"
    "  var h = m.h || {};\n"
    "  add(a, el('h4', null, 'Message ' + m.i + ' \\u00b7 ' + m.src + ' \\u00b7 ' + fmtBytes(m.sz) +\n"
    "    (m.ok ? '' : ' \\u00b7 incomplete') + (m.tr ? ' \\u00b7 truncated in memory' : '')));\n"
    "  var t = add(a, el('table', 'kv'));\n"
    "  kv(t, 'Subject', h.subject);\n"
    "  kv(t, 'From', h.from);\n"
    "  kv(t, 'To', h.to);\n"
    "  kv(t, 'Cc', h.cc);\n"
    "  kv(t, 'Date', h.date);\n"
    "  kv(t, 'Message-ID', h.message_id);\n"
    "  kv(t, 'Envelope from', m.mf);\n"
    "  if (m.rcpt) kv(t, 'Envelope to', m.rcpt.join(', ') + (m.rx ? ' ... and ' + m.rx + ' more' : ''));\n"
    "  kv(t, 'Mailbox', m.mb);\n"
    "  kv(t, 'UID / number', m.uid);\n"
    "  kv(t, 'Section', m.sec);\n"
    "  kv(t, 'Flags', m.fl);\n"
    "  var shaTd = kv(t, 'SHA-256', m.sha);\n"
    "  if (shaTd) shaTd.className = 'mono';\n"
    "  var eml = fileLink(m.eml, decodeURIComponent((m.eml || '').split('/').pop()));\n"
    "  if (eml) kv(t, 'Saved as', eml);\n"
    "\n"
    "  add(a, el('h5', null, 'MIME structure'));\n"
    "  var ul = add(a, el('ul', 'mime'));\n"
    "  (m.parts || []).forEach(function (p) {\n"
    "    var li = add(ul, el('li'));\n"
    "    li.style.paddingLeft = (p.d * 1.6) + 'em';\n"
    "    add(li, el('span', 'dim', (p.path || '') + '  '));\n"
    "    add(li, el('span', 'ct', p.ct || '?'));\n"
    "    var info = [];\n"
    "    if (p.cs) info.push('charset=' + p.cs);\n"
    "    if (p.enc) info.push(p.enc);\n"
    "    if (p.disp) info.push(p.disp);\n"
    "    if (!p.mp) info.push(fmtBytes(p.sz || 0));\n"
    "    if (info.length) add(li, el('span', 'dim', '  ' + info.join(', ')));\n"
    "    if (p.fn !== undefined) add(li, el('span', null, '  \\u201c' + p.fn + '\\u201d'));\n"
    "    if (p.sha) { var sh = add(li, el('span', 'dim', '  sha256 ' + p.sha.slice(0, 16) + '\\u2026')); sh.title = p.sha; }\n"
    "    var fl = fileLink(p.href, 'saved file');\n"
    "    if (fl) { li.appendChild(document.createTextNode('  ')); li.appendChild(fl); }\n"
    "  });\n"
    "  if (m.px) add(ul, el('li', 'dim', '... ' + plural(m.px, 'more part')));\n"
    "  if (!m.parts || !m.parts.length) add(ul, el('li', 'dim', 'no MIME structure (headers only, or not parsed)'));\n"
    "\n"
    "  var bodies = (m.parts || []).filter(function (p) { return p.body !== undefined; });\n"
    "  if (bodies.length) add(a, el('h5', null, 'Body'));\n"
    "  bodies.forEach(function (p) {\n"
    "    var lab = 'part ' + (p.path || '') + ' \\u00b7 ' + p.ct;\n"
    "    var open = i <= BODIES_OPEN;\n"
    "    var d = add(a, el('details', 'sub'));\n"
    "    add(d, el('summary', null, lab));\n"
    "    var fill = function () {\n"
    "      if (/^text\\/html\\b/.test(p.ct)) {\n"
    "        add(d, el('div', 'small', 'HTML shown in a sandbox: its scripts do not run and remote images, styles and fonts are blocked.'));\n"
    "        d.appendChild(htmlFrame(p.body));\n"
    "        var source = add(d, el('details', 'sub'));\n"
    "        add(source, el('summary', null, 'HTML source'));\n"
    "        add(source, el('pre', 'body', p.body));\n"
    "      } else {\n"
    "        add(d, el('pre', 'body', p.body));\n"
    "      }\n"
    "      if (p.bx) add(d, el('div', 'small', '... ' + fmtBytes(p.bx) + ' more not shown (at most ' + fmtBytes(meta.body_max) + ' of text per message)'));\n"
    "    };\n"
    "    var done = false;\n"
    "    d.addEventListener('toggle', function () { if (d.open && !done) { done = true; fill(); } });\n"
    "    d.open = open;\n"
    "  });\n"
    "  if (m.full) add(a, el('p', 'small', 'Bodies left out: the report holds at most its size limit of message text.'));\n"
    "  return a;\n"
    "}\n"
    "/* The body goes into an iframe with sandbox=\"\" (no scripts, no forms, no\n"
    "   navigation of this page, an origin of its own) and its own policy that\n"
    "   forbids every fetch, on top of the one it inherits from this page. */\n"
    "function htmlFrame(body) {\n"
    "  var f = el('iframe', 'html');\n"
    "  f.setAttribute('sandbox', '');\n"
    "  f.setAttribute('referrerpolicy', 'no-referrer');\n"
    "  f.setAttribute('title', 'HTML body (sandboxed)');\n"
    "  f.srcdoc = '<meta http-equiv=\"Content-Security-Policy\" content=\"default-src \\'none\\'; ' +\n"
    "    'style-src \\'unsafe-inline\\'; img-src data:\">' + body;\n"
    "  return f;\n"
    "}\n"
    "\n"
    "/* ---- #session=ID opens that session; #session=all opens every listed one ---- */\n"
    "function openFromHash() {\n"
    "  var m = /^#session=(\\w+)$/.exec(location.hash);\n"
    "  if (!m) return;\n"
    "  if (m[1] === 'all') {\n"
    "    Array.prototype.forEach.call(list.querySelectorAll('details.sess'), function (d) { d.build(); d.open = true; });\n"
    "  } else {\n"
    "    var s = byId[m[1]];\n"
    "    if (s) {\n"
    "      var d = $('session-' + s.id);\n"
    "      if (!d) { d = row(s); list.insertBefore(d, list.firstChild); }\n"
    "      d.build();\n"
    "      d.open = true;\n"
    "      d.scrollIntoView({ block: 'start' });\n"
    "    }\n"
    "  }\n"
    "}\n"
    "window.addEventListener('hashchange', openFromHash);\n"
    "applyFilter();\n"
    "openFromHash();\n"
    "})();\n"
    ;
/* clang-format on */

/* ---- writing data blocks ---- */

/* JSON (already escaped by mt_esc_json) with < > & as \u escapes: inside a
 * script element no "</script" or "<!--" can then appear.  Structural JSON
 * never holds these characters, so every one is inside a string. */
static void put_json(FILE *f, const char *p, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep;
        switch (p[i]) {
        case '<': rep = "\\u003c"; break;
        case '>': rep = "\\u003e"; break;
        case '&': rep = "\\u0026"; break;
        default: continue;
        }
        fwrite(p + from, 1, i - from, f);
        fputs(rep, f);
        from = i + 1;
    }
    fwrite(p + from, 1, n - from, f);
}

/* A data block: <script type="application/json" id="<kind><ord>.<k>"> */
static void put_block(struct mt_html *h, char kind, uint64_t ord, uint64_t k, const GString *json)
{
    fprintf(h->f, "<script type=\"application/json\" id=\"%c%llu.%llu\">", kind,
            (unsigned long long)ord, (unsigned long long)k);
    put_json(h->f, json->str, json->len);
    fputs("</script>\n", h->f);
}

/* ---- JSON fields ---- */

static void key(GString *b, const char *k)
{
    g_string_append(b, ",\"");
    g_string_append(b, k);
    g_string_append(b, "\":");
}

/* One line from the network, as the transcript shows it (control
 * characters and invalid UTF-8 as \xNN), at most max bytes of it. */
static void line_str_max(struct mt_html *h, GString *b, const void *p, size_t n, size_t max)
{
    GString *t = h->tmp;
    g_string_truncate(t, 0);
    size_t k = mt_utf8_cut(p, n, max);
    mt_esc_text(t, p, k);
    if (k < n)
        g_string_append_printf(t, " ... (%llu more bytes)", (unsigned long long)(n - k));
    mt_esc_json(b, t->str, t->len);
}

static void line_str(struct mt_html *h, GString *b, const void *p, size_t n)
{
    line_str_max(h, b, p, n, MT_CAP_HTML_LINE);
}

static void line_field_max(struct mt_html *h, GString *b, const char *k, const char *v, size_t max)
{
    if (!v)
        return;
    key(b, k);
    line_str_max(h, b, v, strlen(v), max);
}

static void line_field(struct mt_html *h, GString *b, const char *k, const char *v)
{
    line_field_max(h, b, k, v, MT_CAP_HTML_LINE);
}

static void num_field(GString *b, const char *k, uint64_t v)
{
    key(b, k);
    mt_append_u64(b, v);
}

static void time_field(GString *b, const char *k, int64_t us)
{
    key(b, k);
    if (us < 0)
        g_string_append_c(b, '-');
    mt_append_u64(b, us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us);
}

static void bool_field(GString *b, const char *k, bool v)
{
    key(b, k);
    g_string_append(b, v ? "true" : "false");
}

/* "<ip>" of an endpoint, and its port. */
static void endpoint_fields(GString *b, const char *k, const struct mt_endpoint *e)
{
    char ip[64];
    key(b, k);
    g_string_append_c(b, '"');
    g_string_append(b, mt_endpoint_ip(e, ip, sizeof(ip)));
    g_string_append_c(b, '"');
    g_string_append_printf(b, ",\"%sp\":%u", k, e->port);
}

/* ---- attachment links ---- */

/* The path of file relative to the page's directory, as a URL path: each
 * component percent-encoded (a name like "javascript:x" stays a relative
 * path), starting with "./" or "../". */
static char *rel_href(const struct mt_html *h, const char *file)
{
    char *abs = g_canonicalize_filename(file, h->cwd);
    gchar **a = g_strsplit(abs, "/", -1);
    gchar **d = g_strsplit(h->page_dir, "/", -1);
    size_t i = 0;
    while (a[i] && a[i + 1] && d[i] && strcmp(a[i], d[i]) == 0)
        i++;
    GString *r = g_string_new(NULL);
    for (size_t j = i; d[j]; j++)
        if (*d[j])
            g_string_append(r, "../");
    if (!r->len)
        g_string_append(r, "./");
    for (size_t j = i; a[j]; j++) {
        if (!*a[j])
            continue;
        if (r->str[r->len - 1] != '/')
            g_string_append_c(r, '/');
        char *e = g_uri_escape_string(a[j], NULL, FALSE);
        g_string_append(r, e);
        g_free(e);
    }
    g_strfreev(a);
    g_strfreev(d);
    g_free(abs);
    return g_string_free(r, FALSE);
}

static void href_field(struct mt_html *h, GString *b, const char *k, const char *file)
{
    if (!file)
        return;
    char *r = rel_href(h, file);
    key(b, k);
    mt_esc_json(b, r, strlen(r));
    g_free(r);
}

/* ---- sessions ---- */

static struct html_sess *sess_get(struct mt_html *h, const struct mt_session_info *si)
{
    struct html_sess *s = g_hash_table_lookup(h->open, &si->id);
    if (!s) {
        s = g_new0(struct html_sess, 1);
        s->id = si->id;
        s->ord = ++h->next_ord;
        s->chunk = g_string_new(NULL);
        s->creds = g_string_new(NULL);
        s->subjects = g_string_new(NULL);
        g_hash_table_insert(h->open, &s->id, s);
    }
    s->proto = si->proto;
    s->client = si->client;
    s->server = si->server;
    s->start_us = si->start_us;
    s->end_us = si->end_us;
    s->bytes[MT_C2S] = si->bytes[MT_C2S];
    s->bytes[MT_S2C] = si->bytes[MT_S2C];
    s->packets = si->packets;
    s->ngaps = si->ngaps;
    s->gap_bytes = si->gap_bytes;
    s->handshake = si->handshake;
    s->complete = si->complete;
    s->starttls = si->starttls;
    s->closed = si->closed;
    memcpy(s->anomalies, si->anomalies, sizeof(s->anomalies));
    if (si->client_name && !s->helo)
        s->helo = g_strndup(si->client_name, MT_CAP_HTML_INDEX_STR);
    return s;
}

static void sess_free(gpointer p)
{
    struct html_sess *s = p;
    g_string_free(s->chunk, TRUE);
    g_string_free(s->creds, TRUE);
    g_string_free(s->subjects, TRUE);
    g_free(s->helo);
    g_free(s);
}

static void flush_chunk(struct mt_html *h, struct html_sess *s)
{
    if (!s->chunk_n)
        return;
    g_string_truncate(h->buf, 0);
    g_string_append_c(h->buf, '[');
    g_string_append_len(h->buf, s->chunk->str, (gssize)s->chunk->len);
    g_string_append_c(h->buf, ']');
    put_block(h, 'd', s->ord, ++s->nchunks, h->buf);
    g_string_truncate(s->chunk, 0);
    s->chunk_n = 0;
}

/* Starts a dialogue entry of `lines` lines, or returns NULL when the
 * session's dialogue is full (the lines are then only counted). */
static GString *entry(struct mt_html *h, struct html_sess *s, const char *kind,
                      const struct mt_event *ev, uint64_t lines)
{
    if (s->lines >= MT_CAP_HTML_DIALOGUE) {
        s->lines_left_out += lines;
        return NULL;
    }
    s->lines += lines;
    if (s->chunk_n >= HTML_CHUNK || s->chunk->len >= HTML_CHUNK_BYTES)
        flush_chunk(h, s);
    GString *b = s->chunk;
    if (s->chunk_n++)
        g_string_append_c(b, ',');
    g_string_append_printf(b, "{\"k\":\"%s\"", kind);
    time_field(b, "t", ev->ts_us);
    num_field(b, "p", ev->pkt);
    return b;
}

static void command(struct mt_html *h, struct html_sess *s, const struct mt_event *ev)
{
    GString *b = entry(h, s, "c", ev, 1);
    if (!b)
        return;
    key(b, "l");
    if (h->redact && ev->u.cmd.secret) {
        GString *l = g_string_new_len((const char *)ev->u.cmd.tag.p, (gssize)ev->u.cmd.tag.n);
        if (ev->u.cmd.tag.n)
            g_string_append_c(l, ' ');
        g_string_append_len(l, (const char *)ev->u.cmd.verb.p, (gssize)ev->u.cmd.verb.n);
        g_string_append(l, ev->u.cmd.verb.n ? " ****" : "****");
        line_str(h, b, l->str, l->len);
        g_string_free(l, TRUE);
    } else if (ev->u.cmd.line.n) {
        line_str(h, b, ev->u.cmd.line.p, ev->u.cmd.line.n);
    } else { /* no line kept: verb and argument */
        GString *l = g_string_new_len((const char *)ev->u.cmd.verb.p, (gssize)ev->u.cmd.verb.n);
        if (ev->u.cmd.arg.n) {
            g_string_append_c(l, ' ');
            g_string_append_len(l, (const char *)ev->u.cmd.arg.p, (gssize)ev->u.cmd.arg.n);
        }
        line_str(h, b, l->str, l->len);
        g_string_free(l, TRUE);
    }
    if (h->redact && ev->u.cmd.note) {
        char *r = mt_redact_note(ev->u.cmd.note);
        line_field(h, b, "n", r);
        g_free(r);
    } else {
        line_field(h, b, "n", ev->u.cmd.note);
    }
    if (ev->u.cmd.auth_data)
        bool_field(b, "a", true);
    g_string_append_c(b, '}');
}

static void reply(struct mt_html *h, struct html_sess *s, const struct mt_event *ev)
{
    size_t n = ev->u.reply.nlines;
    uint64_t room = MT_CAP_HTML_DIALOGUE > s->lines ? MT_CAP_HTML_DIALOGUE - s->lines : 0;
    size_t shown = n < MT_CAP_HTML_REPLY_LINES ? n : MT_CAP_HTML_REPLY_LINES;
    if (shown > room)
        shown = (size_t)room;
    if (n && !shown) { /* the dialogue is full */
        s->lines_left_out += n;
        return;
    }
    GString *b = entry(h, s, "r", ev, shown ? shown : 1);
    if (!b)
        return;
    line_field(h, b, "c", ev->u.reply.code);
    key(b, "L");
    g_string_append_c(b, '[');
    for (size_t i = 0; i < shown; i++) {
        if (i)
            g_string_append_c(b, ',');
        line_str(h, b, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
    }
    g_string_append_c(b, ']');
    if (shown < n)
        num_field(b, "lx", n - shown);
    line_field(h, b, "n", ev->u.reply.note);
    if (ev->u.reply.cmd_pkt)
        num_field(b, "q", ev->u.reply.cmd_pkt);
    g_string_append_c(b, '}');
}

static void credential_fields(struct mt_html *h, GString *b, const struct mt_credential *c,
                              size_t max)
{
    line_field_max(h, b, "m", c->mechanism, max);
    line_field_max(h, b, "u", c->username, max);
    /* --redact: the secrets masked, as in the transcript and JSON */
#define SECRET(v) (h->redact && (v) ? "****" : (v))
    line_field_max(h, b, "pw", SECRET(c->password), max);
    line_field_max(h, b, "az", c->authzid, max);
    line_field_max(h, b, "tk", SECRET(c->token), max);
    line_field_max(h, b, "hs", SECRET(c->hash), max);
    line_field_max(h, b, "ch", c->challenge, max);
    line_field_max(h, b, "rs", SECRET(c->response), max);
#undef SECRET
    line_field_max(h, b, "dm", c->domain, max);
    line_field_max(h, b, "ws", c->workstation, max);
    key(b, "r");
    g_string_append_printf(b, "\"%s\"", mt_auth_result_name(c->result));
}

static void credential(struct mt_html *h, struct html_sess *s, const struct mt_event *ev)
{
    const struct mt_credential *c = ev->u.cred;
    GString *b = entry(h, s, "cred", ev, 1);
    if (b) {
        credential_fields(h, b, c, MT_CAP_HTML_LINE);
        g_string_append_c(b, '}');
    }
    if (s->ncred++ < MT_CAP_HTML_INDEX_ITEMS) {
        if (s->creds->len)
            g_string_append_c(s->creds, ',');
        g_string_append(s->creds, "{\"p\":");
        mt_append_u64(s->creds, ev->pkt);
        credential_fields(h, s->creds, c, MT_CAP_HTML_INDEX_STR);
        g_string_append_c(s->creds, '}');
    }
}

/* The bodies of the text leaves (not attachments), MT_CAP_HTML_BODY bytes in
 * all and within what is left of MT_CAP_HTML_BODY_TOTAL. */
static void part_body(struct mt_html *h, GString *b, const struct mt_mime_part *p, size_t *left)
{
    if (p->is_multipart || !p->text_utf8 || !p->content_type ||
        strncmp(p->content_type, "text/", 5) != 0 ||
        (p->disposition && strcmp(p->disposition, "attachment") == 0))
        return;
    size_t n = strlen(p->text_utf8);
    size_t k = mt_utf8_cut(p->text_utf8, n, *left);
    key(b, "body");
    mt_esc_json(b, p->text_utf8, k);
    if (k < n)
        num_field(b, "bx", n - k);
    *left -= k;
    h->body_total += k;
}

static void message(struct mt_html *h, struct html_sess *s, const struct mt_event *ev)
{
    const struct mt_message *m = ev->u.msg;
    const char *subject = m->headers.subject;
    bool kept = s->nmsg < MT_CAP_HTML_MSGS;
    GString *e = entry(h, s, "m", ev, 1);
    if (e) {
        num_field(e, "i", m->index);
        line_field(h, e, "src", mt_msg_source_name(m->source));
        num_field(e, "sz", m->size);
        if (kept)
            num_field(e, "b", s->nmsg + 1);
        line_field(h, e, "sj", subject);
        g_string_append_c(e, '}');
    }
    if (subject && s->nsubj++ < MT_CAP_HTML_INDEX_ITEMS) {
        if (s->subjects->len)
            g_string_append_c(s->subjects, ',');
        line_str_max(h, s->subjects, subject, strlen(subject), MT_CAP_HTML_INDEX_STR);
    }
    if (!kept) {
        s->msgs_left_out++;
        return;
    }

    GString *b = h->buf;
    g_string_truncate(b, 0);
    g_string_append(b, "{\"i\":");
    mt_append_u64(b, m->index);
    line_field(h, b, "src", mt_msg_source_name(m->source));
    time_field(b, "t", ev->ts_us);
    num_field(b, "p", ev->pkt);
    line_field(h, b, "mf", m->mail_from);
    if (m->nrcpt) {
        key(b, "rcpt");
        g_string_append_c(b, '[');
        for (size_t i = 0; i < m->nrcpt && i < MT_CAP_HTML_RCPT; i++) {
            if (i)
                g_string_append_c(b, ',');
            line_str(h, b, m->rcpt_to[i], strlen(m->rcpt_to[i]));
        }
        g_string_append_c(b, ']');
        if (m->nrcpt > MT_CAP_HTML_RCPT)
            num_field(b, "rx", m->nrcpt - MT_CAP_HTML_RCPT);
    }
    line_field(h, b, "mb", m->mailbox);
    line_field(h, b, "uid", m->uid);
    line_field(h, b, "fl", m->flags);
    line_field(h, b, "sec", m->section);
    num_field(b, "sz", m->size);
    key(b, "sha");
    mt_esc_json(b, m->sha256, strlen(m->sha256));
    bool_field(b, "ok", m->complete);
    bool_field(b, "tr", m->truncated);
    href_field(h, b, "eml", m->file);
    const struct mt_mime_headers *hd = &m->headers;
    const char *names[] = {"from", "to", "cc", "subject", "date", "message_id"};
    const char *vals[] = {hd->from, hd->to, hd->cc, hd->subject, hd->date, hd->message_id};
    key(b, "h");
    g_string_append_c(b, '{');
    for (int i = 0; i < 6; i++) {
        g_string_append_printf(b, "%s\"%s\":", i ? "," : "", names[i]);
        if (vals[i])
            line_str(h, b, vals[i], strlen(vals[i]));
        else
            g_string_append(b, "null");
    }
    g_string_append(b, "},\"parts\":[");
    size_t left = MT_CAP_HTML_BODY;
    if (h->body_total >= MT_CAP_HTML_BODY_TOTAL)
        left = 0;
    else if (MT_CAP_HTML_BODY_TOTAL - h->body_total < left)
        left = (size_t)(MT_CAP_HTML_BODY_TOTAL - h->body_total);
    for (size_t i = 0; i < m->nparts && i < MT_CAP_HTML_PARTS; i++) {
        const struct mt_mime_part *p = &m->parts[i];
        if (i)
            g_string_append_c(b, ',');
        g_string_append(b, "{\"d\":");
        mt_append_u64(b, p->depth);
        line_field(h, b, "path", p->path);
        line_field(h, b, "ct", p->content_type);
        line_field(h, b, "cs", p->charset);
        line_field(h, b, "enc", p->encoding);
        line_field(h, b, "fn", p->filename);
        line_field(h, b, "disp", p->disposition);
        if (p->is_multipart) {
            bool_field(b, "mp", true);
        } else {
            num_field(b, "sz", p->size);
            key(b, "sha");
            mt_esc_json(b, p->sha256, strlen(p->sha256));
        }
        href_field(h, b, "href", p->file);
        part_body(h, b, p, &left);
        g_string_append_c(b, '}');
    }
    g_string_append_c(b, ']');
    if (m->nparts > MT_CAP_HTML_PARTS)
        num_field(b, "px", m->nparts - MT_CAP_HTML_PARTS);
    if (h->body_total >= MT_CAP_HTML_BODY_TOTAL)
        bool_field(b, "full", true);
    g_string_append_c(b, '}');
    put_block(h, 'm', s->ord, ++s->nmsg, b);
}

static void anomaly(struct mt_html *h, struct html_sess *s, const struct mt_event *ev)
{
    GString *b = entry(h, s, "an", ev, 1);
    if (!b)
        return;
    line_field(h, b, "name", mt_anomaly_name(ev->u.anomaly.kind));
    line_field(h, b, "dir", ev->u.anomaly.dir == MT_C2S ? "c2s" : "s2c");
    line_field(h, b, "d", ev->u.anomaly.detail);
    g_string_append_c(b, '}');
}

/* The session's record in the index; si is the final state when the
 * session ended, NULL when the run ended first. */
static void sess_end(struct mt_html *h, struct html_sess *s, const struct mt_session_info *si)
{
    flush_chunk(h, s);
    GString *b = h->buf;
    g_string_truncate(b, 0);
    g_string_append(b, "{\"o\":");
    mt_append_u64(b, s->ord);
    num_field(b, "id", s->id);
    key(b, "p");
    g_string_append_printf(b, "\"%s\"", mt_proto_name(s->proto));
    endpoint_fields(b, "c", &s->client);
    endpoint_fields(b, "s", &s->server);
    time_field(b, "t0", s->start_us);
    time_field(b, "t1", s->end_us);
    num_field(b, "bc", s->bytes[MT_C2S]);
    num_field(b, "bs", s->bytes[MT_S2C]);
    num_field(b, "pk", s->packets);
    bool_field(b, "hs", s->handshake);
    bool_field(b, "cl", s->closed);
    bool_field(b, "ok", s->complete);
    bool_field(b, "tls", s->starttls);
    bool_field(b, "ended", si != NULL);
    num_field(b, "gaps", s->ngaps);
    num_field(b, "gapb", s->gap_bytes);
    key(b, "an");
    mt_json_anomaly_counts(b, s->anomalies);
    line_field_max(h, b, "helo", si && si->client_name ? si->client_name : s->helo,
                   MT_CAP_HTML_INDEX_STR);
    if (si && si->capabilities) {
        key(b, "caps");
        g_string_append_c(b, '[');
        for (unsigned i = 0; i < MT_CAP_HTML_CAPS && si->capabilities[i]; i++) {
            if (i)
                g_string_append_c(b, ',');
            line_str(h, b, si->capabilities[i], strlen(si->capabilities[i]));
        }
        g_string_append_c(b, ']');
    }
    num_field(b, "nd", s->nchunks);
    num_field(b, "nl", s->lines);
    num_field(b, "lx", s->lines_left_out);
    num_field(b, "nm", s->nmsg);
    num_field(b, "mx", s->msgs_left_out);
    num_field(b, "nc", s->ncred);
    g_string_append(b, ",\"cr\":[");
    g_string_append_len(b, s->creds->str, (gssize)s->creds->len);
    g_string_append(b, "],\"sj\":[");
    g_string_append_len(b, s->subjects->str, (gssize)s->subjects->len);
    g_string_append(b, "]}");
    if (h->nindex++)
        fputc(',', h->index);
    put_json(h->index, b->str, b->len);
}

/* ---- the interface ---- */

static void put_head(struct mt_html *h)
{
    /* the policy names our one script by its hash */
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(ck, (const guchar *)page_js, (gssize)strlen(page_js));
    guint8 digest[32];
    gsize dlen = sizeof(digest);
    g_checksum_get_digest(ck, digest, &dlen);
    g_checksum_free(ck);
    gchar *b64 = g_base64_encode(digest, dlen);
    fprintf(h->f,
            "<!DOCTYPE html>\n"
            "<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "script-src 'sha256-%s'; style-src 'unsafe-inline'; img-src data:; "
            "frame-src 'self'; form-action 'none'; base-uri 'none'\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"generator\" content=\"mailtap %s\">\n"
            "<title>mailtap report</title>\n<style>\n%s</style>\n</head>\n<body>\n"
            "<header class=\"top\"><h1>mailtap report</h1>"
            "<p class=\"sub\" id=\"sub\"></p></header>\n"
            "<main id=\"app\"><noscript><p>This page is built by its own script, which "
            "is embedded in it and fetches nothing: allow JavaScript for this file to read "
            "the report.</p></noscript></main>\n",
            b64, MAILTAP_VERSION, page_css);
    g_free(b64);
}

struct mt_html *mt_html_new(const char *path, const char *extract_dir, bool redact, char *err,
                            size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    FILE *idx = tmpfile();
    if (!idx) {
        snprintf(err, errlen, "temporary file for %s: %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    struct mt_html *h = g_new0(struct mt_html, 1);
    h->f = f;
    h->index = idx;
    h->cwd = g_get_current_dir();
    char *dir = g_path_get_dirname(path);
    h->page_dir = g_canonicalize_filename(dir, h->cwd);
    g_free(dir);
    h->extract = extract_dir != NULL;
    h->redact = redact;
    h->open = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, sess_free);
    h->buf = g_string_sized_new(4096);
    h->tmp = g_string_sized_new(1024);
    g_mutex_init(&h->lock);
    put_head(h);
    return h;
}

void mt_html_event(struct mt_html *h, const struct mt_event *ev)
{
    if (!h || !h->f || !ev->sess)
        return;
    g_mutex_lock(&h->lock);
    struct html_sess *s = sess_get(h, ev->sess);
    switch (ev->type) {
    case MT_EV_SESSION_START: break;
    case MT_EV_COMMAND: command(h, s, ev); break;
    case MT_EV_REPLY: reply(h, s, ev); break;
    case MT_EV_CREDENTIAL: credential(h, s, ev); break;
    case MT_EV_MESSAGE: message(h, s, ev); break;
    case MT_EV_ANOMALY: anomaly(h, s, ev); break;
    case MT_EV_TLS: {
        GString *b = entry(h, s, "tls", ev, 1);
        if (b)
            g_string_append_c(b, '}');
        break;
    }
    case MT_EV_SESSION_END:
        sess_end(h, s, ev->sess);
        g_hash_table_remove(h->open, &s->id);
        break;
    }
    g_mutex_unlock(&h->lock);
}

static gint by_ord(gconstpointer a, gconstpointer b)
{
    const struct html_sess *x = *(struct html_sess *const *)a;
    const struct html_sess *y = *(struct html_sess *const *)b;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

bool mt_html_finish(struct mt_html *h, char *err, size_t errlen)
{
    g_mutex_lock(&h->lock);
    /* sessions the run ended before they did */
    GPtrArray *left = g_ptr_array_new();
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, h->open);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_ptr_array_add(left, v);
    g_ptr_array_sort(left, by_ord);
    for (guint i = 0; i < left->len; i++)
        sess_end(h, left->pdata[i], NULL);
    g_ptr_array_free(left, TRUE);
    g_hash_table_remove_all(h->open);

    GString *b = h->buf;
    g_string_truncate(b, 0);
    g_string_append(b, "{\"version\":\"" MAILTAP_VERSION "\"");
    time_field(b, "generated", g_get_real_time());
    bool_field(b, "extract", h->extract);
    num_field(b, "dialogue_max", MT_CAP_HTML_DIALOGUE);
    num_field(b, "body_max", MT_CAP_HTML_BODY);
    num_field(b, "msgs_max", MT_CAP_HTML_MSGS);
    g_string_append_c(b, '}');
    fputs("<script type=\"application/json\" id=\"meta\">", h->f);
    put_json(h->f, b->str, b->len);
    fputs("</script>\n<script type=\"application/json\" id=\"index\">[", h->f);
    bool ok = !ferror(h->index) && fflush(h->index) == 0;
    rewind(h->index);
    char chunk[65536];
    size_t n;
    while (ok && (n = fread(chunk, 1, sizeof(chunk), h->index)) > 0)
        fwrite(chunk, 1, n, h->f);
    ok = ok && !ferror(h->index);
    fprintf(h->f, "]</script>\n<script>%s</script>\n</body>\n</html>\n", page_js);
    ok = !ferror(h->f) && ok;
    if (fclose(h->f) != 0)
        ok = false;
    h->f = NULL;
    if (!ok)
        snprintf(err, errlen, "cannot write the HTML report: %s", strerror(errno));
    g_mutex_unlock(&h->lock);
    return ok;
}

void mt_html_free(struct mt_html *h)
{
    if (!h)
        return;
    if (h->f)
        fclose(h->f);
    if (h->index)
        fclose(h->index);
    g_hash_table_destroy(h->open);
    g_string_free(h->buf, TRUE);
    g_string_free(h->tmp, TRUE);
    g_free(h->cwd);
    g_free(h->page_dir);
    g_mutex_clear(&h->lock);
    g_free(h);
}
