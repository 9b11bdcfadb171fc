// game.js — the page of the game session (examples/game.sql): arrow keys become inputs, the
// server's 20 Hz ticks are drawn, smoothed between the last two ticks.
import { connect, objectUrl } from './durable.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'arena';
const name = params.get('name') || localStorage.getItem('durable-demo-name') || `player ${Math.floor(Math.random() * 900 + 100)}`;
const $ = (id) => document.getElementById(id);
$('room').textContent = room;

const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
const socket = connect(objectUrl(base, 'game', room), { params: { name } });
const game = { socket, you: null, rules: null, prev: null, cur: null, curAt: 0, ticks: [] };
window.game = game;

socket.on('event', (e) => {
    if (e.type === 'welcome') {
        game.you = e.you;
        game.rules = e.rules;
        game.prev = game.cur = e.state;
        game.curAt = performance.now();
    } else if (e.type === 'tick') {
        game.prev = game.cur;
        game.cur = e;
        game.curAt = performance.now();
        game.ticks.push(game.curAt);
        while (game.ticks.length && game.ticks[0] < game.curAt - 1000) game.ticks.shift();
        $('tick').textContent = e.tick;
        $('rate').textContent = game.ticks.length;
        scores(e.players);
    }
});

const setStatus = (s) => { $('status').textContent = s; $('status').className = `status ${s}`; };
socket.on('open', () => setStatus('open'));
socket.on('close', (c) => setStatus(c.willReconnect ? 'reconnecting' : 'closed'));

// keys held -> direction; send only changes, as fire-and-forget frames ($message)
const held = new Set();
const dirs = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0],
               w: [0, -1], s: [0, 1], a: [-1, 0], d: [1, 0] };
let sent = '0,0';
function steer() {
    let dx = 0, dy = 0;
    for (const k of held) { dx += dirs[k][0]; dy += dirs[k][1]; }
    dx = Math.sign(dx); dy = Math.sign(dy);
    if (`${dx},${dy}` === sent || socket.state !== 'open') return;
    sent = `${dx},${dy}`;
    socket.send({ type: 'input', dx, dy });
}
const keyOf = (e) => (dirs[e.key] ? e.key : dirs[e.key?.toLowerCase()] ? e.key.toLowerCase() : null);
window.addEventListener('keydown', (e) => { const k = keyOf(e); if (!k) return; e.preventDefault(); held.add(k); steer(); });
window.addEventListener('keyup', (e) => { const k = keyOf(e); if (!k) return; held.delete(k); steer(); });
window.addEventListener('blur', () => { held.clear(); steer(); });
socket.on('open', () => { sent = null; steer(); });
for (const b of document.querySelectorAll('.pad button')) {
    const k = b.dataset.k;
    b.addEventListener('pointerdown', (e) => { e.preventDefault(); held.add(k); steer(); });
    for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) b.addEventListener(ev, () => { held.delete(k); steer(); });
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
function scores(players) {
    $('scores').innerHTML = [...players].sort((a, b) => b.score - a.score || a.name.localeCompare(b.name))
        .map((p) => `<li class="${p.id === game.you ? 'me' : ''}"><span><span class="dot" style="background:${esc(p.color)}"></span>${esc(p.name)}${p.id === game.you ? ' (you)' : ''}</span><b>${p.score}</b></li>`)
        .join('');
}

// draw: positions interpolated between the previous and the current tick
const canvas = $('arena');
const g = canvas.getContext('2d');
function frame(now) {
    requestAnimationFrame(frame);
    const { prev, cur, rules } = game;
    g.clearRect(0, 0, canvas.width, canvas.height);
    g.strokeStyle = 'rgba(255,255,255,0.05)';
    for (let x = 50; x < canvas.width; x += 50) { g.beginPath(); g.moveTo(x, 0); g.lineTo(x, canvas.height); g.stroke(); }
    for (let y = 50; y < canvas.height; y += 50) { g.beginPath(); g.moveTo(0, y); g.lineTo(canvas.width, y); g.stroke(); }
    if (!cur || !rules) return;
    const t = Math.min(1, (now - game.curAt) / rules.tick_ms);
    const before = new Map((prev?.players || []).map((p) => [p.id, p]));
    // coin
    g.fillStyle = '#f5c542';
    g.beginPath(); g.arc(cur.coin.x, cur.coin.y, rules.coin_radius, 0, Math.PI * 2); g.fill();
    for (const p of cur.players) {
        const q = before.get(p.id) || p;
        const x = q.x + (p.x - q.x) * t, y = q.y + (p.y - q.y) * t;
        g.fillStyle = p.color;
        g.beginPath(); g.arc(x, y, rules.radius, 0, Math.PI * 2); g.fill();
        if (p.id === game.you) { g.strokeStyle = '#fff'; g.lineWidth = 2; g.stroke(); }
        g.fillStyle = 'rgba(255,255,255,0.85)';
        g.font = '12px system-ui, sans-serif';
        g.textAlign = 'center';
        g.fillText(`${p.name} · ${p.score}`, x, y - rules.radius - 6);
    }
}
requestAnimationFrame(frame);
canvas.focus();
