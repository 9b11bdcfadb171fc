// doc.js — the page of the collaborative document: binds a textarea to a CollabDoc.
import { connect, objectUrl } from './durable.js';
import { CollabDoc } from './collab.js';
import { diff, transformIndex, cpToUtf16, utf16ToCp } from './ot.js';

const params = new URLSearchParams(location.search);
const docId = params.get('doc') || 'welcome';
const names = ['Ada', 'Grace', 'Linus', 'Barbara', 'Edsger', 'Margaret', 'Ken', 'Frances', 'Dennis', 'Radia'];
// one name per window: sessionStorage belongs to this window (tab) and survives its reloads;
// two windows of one browser are two participants
const name = params.get('name') || sessionStorage.getItem('durable-demo-name') ||
    `${names[Math.floor(Math.random() * names.length)]} ${Math.floor(Math.random() * 90 + 10)}`;
sessionStorage.setItem('durable-demo-name', name);

const $ = (id) => document.getElementById(id);
const ta = $('text');
const mirror = $('mirror');
$('docname').value = docId;
$('sqlid').textContent = docId;
document.title = `${docId} · collaborative document`;
$('switch').addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams(location.search);
    p.set('doc', $('docname').value.trim() || 'welcome');
    location.search = p.toString();
});

const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
const client = CollabDoc.newClientId();
const socket = connect(objectUrl(base, 'collab_doc', docId), { params: { client, name } });
const doc = new CollabDoc(socket, { client });
window.collab = { doc, socket, client };   // for the browser test and the curious

// what the textarea showed the last time we synchronised with doc.text
let shown = '';

// turn whatever the user did since the last look into one operation
function flush() {
    if (ta.value === shown) return;
    const op = diff(shown, ta.value);
    shown = ta.value;
    doc.applyLocal(op);
}
ta.addEventListener('input', flush);
doc.beforeRemote = flush;

doc.on('change', ({ text, op, remote }) => {
    $('version').textContent = doc.version;
    if (!remote) { renderCursors(); return; }
    // keep the user's selection where it was, moved by the remote edit
    const before = ta.value;
    const focused = document.activeElement === ta;
    let s = utf16ToCp(before, ta.selectionStart);
    let e = utf16ToCp(before, ta.selectionEnd);
    if (op) { s = transformIndex(op, s); e = transformIndex(op, e); }
    const top = ta.scrollTop;
    ta.value = text;
    shown = text;
    ta.setSelectionRange(cpToUtf16(text, s), cpToUtf16(text, e));
    ta.scrollTop = top;
    if (focused && document.activeElement !== ta) ta.focus();
    renderCursors();
});

doc.on('ready', () => {
    ta.disabled = false;
    ta.value = doc.text;
    shown = doc.text;
    $('version').textContent = doc.version;
    ta.focus();
    ta.setSelectionRange(ta.value.length, ta.value.length);
    renderCursors();
});

// our own edits get their version when the server acknowledges them
doc.on('synced', () => { $('version').textContent = doc.version; });

doc.on('error', (e) => { $('error').textContent = `${e.code || ''} ${e.message} (the document was reloaded)`; });

// status pill; a permanent error (the class is gone, the server refused us) is shown as such
const setStatus = (s) => { $('status').textContent = s; $('status').className = `status ${s}`; };
socket.on('open', () => setStatus('open'));
socket.on('close', (c) => {
    setStatus(c.willReconnect ? 'reconnecting' : 'closed');
    if (c.error && c.error.code !== 'CLOSED') $('error').textContent = `${c.error.code} ${c.error.message}`;
});

// our cursor, at most every 80 ms
let lastSent = null;
let timer = null;
function sendCursor() {
    timer = null;
    const pos = utf16ToCp(ta.value, ta.selectionStart);
    if (pos === lastSent || doc.version < 0) return;
    lastSent = pos;
    doc.cursor(pos);
}
document.addEventListener('selectionchange', () => {
    if (document.activeElement === ta && timer === null) timer = setTimeout(sendCursor, 80);
});
ta.addEventListener('input', () => { if (timer === null) timer = setTimeout(sendCursor, 80); });

// the others: a list and their cursors drawn over the text
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
function lineCol(text, pos) {
    const before = Array.from(text).slice(0, pos).join('');
    const lines = before.split('\n');
    return `${lines.length}:${lines[lines.length - 1].length + 1}`;
}
function renderPeople() {
    const me = doc.me ? `<li><span class="dot" style="background:${esc(doc.me.color)}"></span>${esc(doc.me.name)} <span class="pos">(you)</span></li>` : '';
    const others = [...doc.peers.values()].map((p) =>
        `<li><span class="dot" style="background:${esc(p.color)}"></span>${esc(p.name)}` +
        (p.pos != null ? `<span class="pos">at ${lineCol(doc.text, p.pos)}</span>` : '') + '</li>').join('');
    $('people').innerHTML = me + others;
}
function renderCursors() {
    renderPeople();
    // the mirror has the textarea's text box, minus its scrollbar
    mirror.style.right = `${ta.offsetWidth - ta.clientWidth - 2}px`;
    mirror.style.bottom = `${ta.offsetHeight - ta.clientHeight - 2}px`;
    const chars = Array.from(ta.value);
    const marks = [...doc.peers.values()].filter((p) => p.pos != null)
        .map((p) => ({ ...p, pos: Math.min(p.pos, chars.length) })).sort((a, b) => a.pos - b.pos);
    let html = '';
    let at = 0;
    for (const m of marks) {
        html += esc(chars.slice(at, m.pos).join(''));
        html += `<span class="rc" style="--c:${esc(m.color)}"><span>${esc(m.name)}</span></span>`;
        at = m.pos;
    }
    html += esc(chars.slice(at).join('')) + '\n';
    mirror.innerHTML = html;
    mirror.scrollTop = ta.scrollTop;
}
doc.on('peers', renderCursors);
ta.addEventListener('scroll', () => { mirror.scrollTop = ta.scrollTop; });
window.addEventListener('resize', renderCursors);
