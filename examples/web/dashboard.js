// dashboard.js — a live dashboard of one IoT hub (examples/iot_hub.sql): a snapshot on
// connect, then "reading" and "alert" events as they commit.
import { connect, objectUrl } from './durable.js';

const params = new URLSearchParams(location.search);
const site = params.get('site') || 'plant-1';
const $ = (id) => document.getElementById(id);
$('site').textContent = site;
$('sitename').value = site;
document.title = `${site} · IoT dashboard`;
for (const el of document.querySelectorAll('.posturl')) {
    el.textContent = `${location.origin}/objects/iot_hub/${encodeURIComponent(site)}/reading`;
}
$('switch').addEventListener('submit', (e) => {
    e.preventDefault();
    location.search = `site=${encodeURIComponent($('sitename').value.trim() || 'plant-1')}`;
});

const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
const socket = connect(objectUrl(base, 'iot_hub', site));
const devices = new Map();      // device -> { readings, last, history: [], alerts, el }
let live = 0;
window.dashboard = { socket, devices, site, get live() { return live; } };

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
const fmt = (v) => (Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(4)).toString());
const time = (t) => new Date(t).toLocaleTimeString();

function card(device) {
    let d = devices.get(device);
    if (d) return d;
    d = { device, readings: 0, last: null, history: [], alerts: 0 };
    const el = document.createElement('div');
    el.className = 'card';
    el.dataset.device = device;
    el.innerHTML = `<h3><span>${esc(device)}</span><span class="badge" hidden></span></h3>
        <div class="value">–</div>
        <div class="meta"><span class="avg"></span><span class="n"></span></div>
        <canvas width="460" height="88"></canvas>`;
    d.el = el;
    const grid = $('devices');
    grid.querySelector('.empty')?.remove();
    // keep the cards sorted by device name
    const after = [...grid.children].find((c) => c.dataset.device > device);
    grid.insertBefore(el, after || null);
    devices.set(device, d);
    return d;
}

function draw(d) {
    const el = d.el;
    el.querySelector('.value').textContent = d.last === null ? '–' : fmt(d.last);
    const recent = d.history.slice(-10);
    el.querySelector('.avg').textContent = recent.length ? `avg10 ${fmt(recent.reduce((a, b) => a + b, 0) / recent.length)}` : '';
    el.querySelector('.n').textContent = `${d.readings} readings`;
    const badge = el.querySelector('.badge');
    badge.hidden = d.alerts === 0;
    badge.textContent = `${d.alerts} alert${d.alerts === 1 ? '' : 's'}`;
    // sparkline of the last 50 values
    const c = el.querySelector('canvas');
    const g = c.getContext('2d');
    g.clearRect(0, 0, c.width, c.height);
    const h = d.history.slice(-50);
    if (h.length < 2) return;
    const lo = Math.min(...h), hi = Math.max(...h), span = hi - lo || 1;
    g.strokeStyle = '#3355ff';
    g.lineWidth = 3;
    g.beginPath();
    h.forEach((v, i) => {
        const x = (i / (h.length - 1)) * (c.width - 6) + 3;
        const y = c.height - 4 - ((v - lo) / span) * (c.height - 8);
        if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
}

function addAlert(a, prepend = true) {
    const li = document.createElement('li');
    li.innerHTML = `<b>${esc(a.device)}</b> read ${esc(fmt(Number(a.value)))}, average ${esc(fmt(Number(a.average)))}
        <span class="muted">· ${esc(time(a.at))}</span>`;
    const ul = $('alerts');
    if (prepend) ul.prepend(li); else ul.append(li);
    while (ul.children.length > 100) ul.lastChild.remove();
}

socket.on('event', (e) => {
    if (e.type === 'snapshot') {
        // first data after every (re)connect: start over
        devices.clear();
        $('devices').innerHTML = '';
        $('alerts').innerHTML = '';
        for (const s of e.devices) {
            const d = card(s.device);
            d.readings = s.readings;
            d.last = Number(s.last);
            d.history = s.history.map(Number);
            d.alerts = s.alerts;
            draw(d);
        }
        for (const a of [...e.alerts].reverse()) addAlert(a, false);
    } else if (e.type === 'reading') {
        const d = card(e.device);
        d.readings += 1;
        d.last = Number(e.value);
        d.history.push(d.last);
        if (d.history.length > 200) d.history.splice(0, d.history.length - 200);
        draw(d);
        live += 1;
        $('count').textContent = live;
    } else if (e.type === 'alert') {
        const d = card(e.device);
        d.alerts += 1;
        draw(d);
        d.el.classList.add('flash');
        setTimeout(() => d.el.classList.remove('flash'), 1200);
        addAlert(e);
    }
});

const setStatus = (s) => { $('status').textContent = s; $('status').className = `status ${s}`; };
socket.on('open', () => setStatus('open'));
socket.on('close', (c) => setStatus(c.willReconnect ? 'reconnecting' : 'closed'));

$('send').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
        await socket.call('reading', { device: $('dev').value.trim(), value: Number($('val').value) });
    } catch (err) {
        alert(`${err.code}: ${err.message}`);
    }
});
