// bench/ws_bench.mjs — the WebSocket load generator of `make bench` (figure 4).
//
//   node ws_bench.mjs rtt   --calls 5000                      one socket, sequential echo calls
//   node ws_bench.mjs room  --sockets N --broadcasts 200 --flood-seconds 3
//                           [--inflight 4 --per-call 10 --gateway-pid P --host-pids a,b]
//                           N sockets on one object: memory per idle socket, time until all N
//                           got one broadcast, deliveries per second under a flood
//   node ws_bench.mjs ... --client raw
//                           the same with a bare net.Socket and a small frame parser instead of
//                           the npm package ws (to see how much of a figure is the client's)
//   node ws_bench.mjs floor --sockets 100 --calls 5000 --flood-seconds 3
//                           the same client code against a trivial local server (node echo of
//                           call frames; pre-serialised event frames written in bulk): what this
//                           client can take at most, to show it is not the bottleneck
//
// Environment: DURABLE_PORT (the gateway on 127.0.0.1), WS_MODULE_DIR (a folder whose
// node_modules holds the npm package ws; default: ../test/ws).  Progress goes to stderr, the
// result as one JSON line to stdout.  CPU use of this process (and of the gateway and host
// processes given by pid) is reported per phase as a share of one core.
import { createRequire } from 'node:module';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(process.env.WS_MODULE_DIR || path.join(here, '../test/ws'), 'package.json'));
const WebSocket = require('ws');

const argv = process.argv.slice(2);
const mode = argv[0];
const opt = {};
for (let i = 1; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const num = (k, d) => (opt[k] === undefined ? d : Number(opt[k]));

const PORT = Number(process.env.DURABLE_PORT || 7432);
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`  [ws] ${a.join(' ')}\n`);

// ---------------------------------------------------------------------------------------------
// measurements

function pct(values, p) {
    if (values.length === 0) return null;
    const s = Float64Array.from(values).sort();
    const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
    return s[i];
}

// a flood under way: settle for 0.5 s, then count deliveries (total() = events so far) and CPU
// over the given seconds
async function meterFlood(total, seconds) {
    await sleep(500);
    const e0 = total();
    const stop = cpuMeter();
    await sleep(seconds * 1000);
    return { delivered: total() - e0, cpu: stop() };
}

function summary(ms) {
    if (ms.length === 0) return { n: 0 };
    return {
        n: ms.length,
        p50_ms: round(pct(ms, 50)),
        p99_ms: round(pct(ms, 99)),
        max_ms: round(pct(ms, 100)),
        avg_ms: round(ms.reduce((a, b) => a + b, 0) / ms.length),
    };
}

const round = (x, d = 3) => (x === null || x === undefined ? x : Math.round(x * 10 ** d) / 10 ** d);

const CLK_TCK = 100;
function procCpuMs(pid) {           // utime + stime of a process, in ms
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
    } catch {
        return null;
    }
}

function procRssKiB(pid) {
    try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : null;
    } catch {
        return null;
    }
}

function machineJiffies() {         // [total, idle + iowait, steal] of all cores
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return [f.reduce((a, b) => a + b, 0), f[3] + f[4], f[7]];
}
const NCPU = (() => { try { return readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length || 1; } catch { return 1; } })();

const gatewayPid = opt['gateway-pid'] ? Number(opt['gateway-pid']) : null;
const hostPids = opt['host-pids'] ? opt['host-pids'].split(',').filter(Boolean).map(Number) : [];

// CPU use between start() and stop(): this client, the gateway, the hosts (share of one core)
function cpuMeter() {
    const t0 = now();
    const c0 = process.cpuUsage();
    const g0 = gatewayPid ? procCpuMs(gatewayPid) : null;
    const h0 = hostPids.map(procCpuMs);
    const m0 = machineJiffies();
    const elu0 = performance.eventLoopUtilization();
    return () => {
        const wall = now() - t0;
        const c = process.cpuUsage(c0);
        const out = {
            wall_ms: round(wall, 1),
            client_cpu: round((c.user + c.system) / 1000 / wall, 2),
            client_user_cpu: round(c.user / 1000 / wall, 2),
            client_loop_busy: round(performance.eventLoopUtilization(elu0).utilization, 2),
        };
        if (gatewayPid) out.gateway_cpu = round((procCpuMs(gatewayPid) - g0) / wall, 2);
        const m1 = machineJiffies();
        if (m1[0] > m0[0]) {
            out.machine_busy = round((1 - (m1[1] - m0[1]) / (m1[0] - m0[0])) * NCPU, 2);
            out.steal = round((m1[2] - m0[2]) / (m1[0] - m0[0]) * NCPU, 2);
        }
        if (hostPids.length) out.hosts_cpu = round(hostPids.reduce((a, p, i) => a + (procCpuMs(p) - h0[i]), 0) / wall, 2);
        return out;
    };
}

// ---------------------------------------------------------------------------------------------
// a socket of the benchmark: counts events with a byte test, matches replies by id

const EVENT = 0x65;     // {"type":"event"...  byte 9 is 'e'; {"type":"reply"... 'r'; error 'e'+'r'
const REPLY = 0x72;

class Sock {
    constructor(url) {
        this.url = url;
        this.events = 0;
        this.onEvent = null;
        this.pending = new Map();
        this.nextId = 1;
        this.closed = null;
    }

    open(timeout = 30000) {
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(this.url, {
                perMessageDeflate: false,
                skipUTF8Validation: true,
                handshakeTimeout: timeout,
            });
            this.ws = ws;
            ws.on('message', (data) => this.message(data));
            ws.once('open', () => resolve(this));
            ws.once('unexpected-response', (req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
            ws.on('error', (e) => { this.error = e; reject(e); });
            ws.on('close', (code, reason) => {
                this.closed = { code, reason: String(reason) };
                for (const p of this.pending.values()) p.reject(new Error(`socket closed ${code} ${reason}`));
                this.pending.clear();
            });
        });
    }

    message(data) {
        if (data[9] === EVENT && data[10] === 0x76) {       // "event"
            this.events++;
            if (this.onEvent) this.onEvent(this, data);
            return;
        }
        let m;
        try { m = JSON.parse(data); } catch { return; }
        const p = this.pending.get(m.id);
        if (p) {
            this.pending.delete(m.id);
            if (m.type === 'reply') p.resolve(m.result);
            else p.reject(new Error(`call failed: ${JSON.stringify(m.error)}`));
        }
    }

    call(method, args) {
        return new Promise((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            this.ws.send(`{"type":"call","id":${id},"method":"${method}","args":${JSON.stringify(args)}}`);
        });
    }

    close() {
        if (this.closed) return Promise.resolve();
        return new Promise((resolve) => {
            this.ws.once('close', resolve);
            this.ws.close(1000);
            setTimeout(() => { this.ws.terminate(); resolve(); }, 5000).unref();
        });
    }
}

// The same socket over a bare net.Socket with a minimal frame parser (--client raw): no
// stream machinery between the TCP read and the count, to see how much of a figure is ws's.
class RawSock {
    constructor(url) {
        const u = new URL(url);
        this.host = u.hostname;
        this.port = Number(u.port);
        this.path = u.pathname + u.search;
        this.events = 0;
        this.onEvent = null;
        this.pending = new Map();
        this.nextId = 1;
        this.closed = null;
        this.buf = null;
    }

    open(timeout = 30000) {
        return new Promise((resolve, reject) => {
            const c = net.connect(this.port, this.host);
            this.c = c;
            c.setNoDelay(true);
            const key = createHash('sha1').update(String(Math.random())).digest('base64').slice(0, 22) + '==';
            let head = Buffer.alloc(0);
            let open = false;
            const timer = setTimeout(() => { c.destroy(); reject(new Error('handshake timeout')); }, timeout);
            c.on('connect', () => c.write(`GET ${this.path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n` +
                `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
            c.on('data', (d) => {
                if (open) return this.data(d);
                head = Buffer.concat([head, d]);
                const end = head.indexOf('\r\n\r\n');
                if (end < 0) return;
                clearTimeout(timer);
                const status = head.slice(0, end).toString().split(' ')[1];
                if (status !== '101') { c.destroy(); reject(new Error(`upgrade refused: HTTP ${status}`)); return; }
                open = true;
                resolve(this);
                if (head.length > end + 4) this.data(head.slice(end + 4));
            });
            c.on('error', (e) => { clearTimeout(timer); this.error = e; reject(e); });
            c.on('close', () => {
                if (!this.closed) this.closed = { code: 1006, reason: '' };
                for (const p of this.pending.values()) p.reject(new Error('socket closed'));
                this.pending.clear();
            });
        });
    }

    data(d) {
        let b = this.buf ? Buffer.concat([this.buf, d]) : d;
        let off = 0;
        for (;;) {
            if (b.length - off < 2) break;
            const op = b[off] & 0x0f;
            let len = b[off + 1] & 0x7f;
            let h = 2;
            if (len === 126) { if (b.length - off < 4) break; len = b.readUInt16BE(off + 2); h = 4; }
            else if (len === 127) { if (b.length - off < 10) break; len = Number(b.readBigUInt64BE(off + 2)); h = 10; }
            if (b.length - off < h + len) break;
            const p = b.subarray(off + h, off + h + len);
            off += h + len;
            if (op === 1 || op === 0) this.message(p);
            else if (op === 8) { this.closed = { code: len >= 2 ? p.readUInt16BE(0) : 1005, reason: '' }; this.c.end(); }
            else if (op === 9) this.send(Buffer.from(p), 0x8a);
        }
        this.buf = off < b.length ? Buffer.from(b.subarray(off)) : null;
    }

    message(data) {
        Sock.prototype.message.call(this, data);
    }

    send(payload, op = 0x81) {
        const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
        const h = p.length < 126 ? Buffer.from([op, 0x80 | p.length]) : Buffer.from([op, 0x80 | 126, p.length >> 8, p.length & 255]);
        const mask = Buffer.from([0x5a, 0xa5, 0x3c, 0xc3]);
        for (let i = 0; i < p.length; i++) p[i] ^= mask[i & 3];
        this.c.write(Buffer.concat([h, mask, p]));
    }

    call(method, args) {
        return new Promise((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            this.send(`{"type":"call","id":${id},"method":"${method}","args":${JSON.stringify(args)}}`);
        });
    }

    close() {
        if (this.closed) return Promise.resolve();
        return new Promise((resolve) => {
            this.c.once('close', resolve);
            this.send(Buffer.from([0x03, 0xe8]), 0x88);
            setTimeout(() => { this.c.destroy(); resolve(); }, 5000).unref();
        });
    }
}

const Client = opt.client === 'raw' ? RawSock : Sock;

// open n sockets to url (at most `parallel` handshakes at a time); each one made one echo call,
// so its $connect has been accepted and it is in the room
async function openMany(url, n, parallel = 200) {
    const socks = [];
    let next = 0;
    let failed = 0;
    let lastErr = null;
    async function worker() {
        while (next < n) {
            next++;
            const s = new Client(url);
            try {
                await s.open();
                await s.call('echo', {});
                socks.push(s);
            } catch (e) {
                failed++;
                lastErr = e.message;
            }
        }
    }
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
    if (failed) log(`${failed} of ${n} sockets failed to open (${lastErr})`);
    return { socks, failed, lastErr };
}

// ---------------------------------------------------------------------------------------------
// phases shared by the real gateway and the local floor server

async function rttPhase(sock, calls) {
    const ms = [];
    for (let i = 0; i < 200; i++) await sock.call('echo', { i });       // warm-up
    const stop = cpuMeter();
    for (let i = 0; i < calls; i++) {
        const t0 = now();
        await sock.call('echo', { i });
        ms.push(now() - t0);
    }
    return { ...summary(ms), calls_per_s: Math.round(calls / (stop().wall_ms / 1000)), cpu: stop() };
}

// time until every socket got broadcast k: driver sends a "bcast" call, all sockets count
async function fanoutPhase(socks, driver, broadcasts, timeoutMs) {
    const n = socks.length;
    const ms = [];
    let timeouts = 0;
    let got = 0;
    let done = null;
    for (const s of socks) s.onEvent = () => { if (++got === n && done) done(); };
    const stop = cpuMeter();
    for (let k = 1; k <= broadcasts + 5; k++) {
        got = 0;
        const all = new Promise((resolve) => { done = resolve; });
        const t0 = now();
        const reply = driver.call('bcast', { k, n: 1 });
        const ok = await Promise.race([all.then(() => true), sleep(timeoutMs).then(() => false)]);
        const t = now() - t0;
        done = null;
        await reply;
        if (k <= 5) continue;       // warm-up
        if (ok) ms.push(t); else timeouts++;
    }
    for (const s of socks) s.onEvent = null;
    return { ...summary(ms), timeouts, cpu: stop() };
}

// deliveries per second: `inflight` bcast calls of `per` broadcasts each kept in flight for
// `seconds`; deliveries counted after a warm-up of 0.5 s until the end of the window
async function floodPhase(socks, driver, seconds, inflight, per) {
    const total = () => socks.reduce((a, s) => a + s.events, 0);
    let sent = 0;
    let running = true;
    let errors = 0;
    const start = now();
    async function pump() {
        while (running) {
            try {
                await driver.call('bcast', { k: 0, n: per });
                sent += per;
            } catch {
                errors++;
                await sleep(10);
            }
        }
    }
    const base = total();
    const pumps = Array.from({ length: inflight }, pump);
    const { delivered, cpu } = await meterFlood(total, seconds);
    running = false;
    await Promise.all(pumps);
    // let the queues drain, then compare what was sent with what arrived
    const expected = () => sent * socks.filter((s) => !s.closed).length;
    let before = -1;
    for (let i = 0; i < 100 && total() !== before; i++) { before = total(); await sleep(100); }
    const closed = socks.filter((s) => s.closed).length;
    return {
        deliveries_per_s: Math.round(delivered / (cpu.wall_ms / 1000)),
        broadcasts_per_s: Math.round(delivered / socks.length / (cpu.wall_ms / 1000)),
        broadcasts_sent: sent,
        deliveries_total: total() - base,
        deliveries_expected: expected(),
        sockets_closed: closed,
        call_errors: errors,
        elapsed_s: round((now() - start) / 1000, 1),
        cpu,
    };
}

// ---------------------------------------------------------------------------------------------
// modes

async function modeRtt() {
    const url = `ws://127.0.0.1:${PORT}/objects/bench_room/rtt`;
    const s = await new Client(url).open();
    await s.call('echo', {});
    log(`round trip: ${num('calls', 5000)} sequential calls over one socket`);
    const r = await rttPhase(s, num('calls', 5000));
    await s.close();
    return r;
}

async function modeRoom() {
    const n = num('sockets', 100);
    const url = `ws://127.0.0.1:${PORT}/objects/bench_room/room${n}`;
    const out = { sockets: n, client: opt.client === 'raw' ? 'raw' : 'ws' };
    // the driver first, so it is warm; it is one of the n sockets of the room
    const rss0 = gatewayPid ? procRssKiB(gatewayPid) : null;
    const t0 = now();
    const stopOpen = cpuMeter();
    const { socks, failed, lastErr } = await openMany(url, n);
    out.open = { seconds: round((now() - t0) / 1000, 2), failed, error: lastErr, cpu: stopOpen() };
    log(`${socks.length} sockets open and accepted in ${out.open.seconds} s`);
    if (socks.length === 0) return out;
    await sleep(1000);
    const rss1 = gatewayPid ? procRssKiB(gatewayPid) : null;
    if (gatewayPid) {
        out.gateway_rss_kib_before = rss0;
        out.gateway_rss_kib_after = rss1;
        out.kib_per_socket = round((rss1 - rss0) / socks.length, 2);
    }
    out.sockets_open = socks.length;
    const driver = socks[0];
    const b = num('broadcasts', 200);
    log(`one broadcast to all ${socks.length}: ${b} times`);
    out.fanout = await fanoutPhase(socks, driver, b, num('timeout-ms', 10000));
    log(`fan-out p50 ${out.fanout.p50_ms} ms p99 ${out.fanout.p99_ms} ms; flood for ${num('flood-seconds', 3)} s`);
    out.flood = await floodPhase(socks, driver, num('flood-seconds', 3), num('inflight', 4), num('per-call', 10));
    log(`flood: ${out.flood.deliveries_per_s} deliveries/s (client cpu ${out.flood.cpu.client_cpu}, gateway ${out.flood.cpu.gateway_cpu})`);
    if (gatewayPid) out.gateway_rss_kib_end = procRssKiB(gatewayPid);
    const tc = now();
    await Promise.all(socks.map((s) => s.close()));
    out.close_seconds = round((now() - tc) / 1000, 2);
    return out;
}

// The floor: a child process serving the same protocol trivially.  Echo: a reply frame per
// call frame.  Flood: on "blast", writes pre-serialised event frames to every socket in bulk
// for the given time (backpressure respected), so the only limit is this client's receive path.
async function modeFloor() {
    const child = fork(fileURLToPath(import.meta.url), ['floor-server'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
    const out = {};
    try {
        const url = `ws://127.0.0.1:${port}/objects/bench_room/floor`;
        const s = await new Client(url).open();
        log('floor: round trip against a trivial node server');
        out.rtt = await rttPhase(s, num('calls', 5000));
        await s.close();
        const n = num('sockets', 100);
        const { socks } = await openMany(url, n);
        const seconds = num('flood-seconds', 3);
        log(`floor: ${n} sockets receiving pre-serialised frames for ${seconds} s`);
        const total = () => socks.reduce((a, x) => a + x.events, 0);
        child.send({ blast: seconds + 1 });
        const { delivered, cpu } = await meterFlood(total, seconds);
        out.flood = { sockets: n, deliveries_per_s: Math.round(delivered / (cpu.wall_ms / 1000)), cpu };
        await sleep(800);
        await Promise.all(socks.map((x) => x.close()));
    } finally {
        child.kill();
    }
    return out;
}

function floorServer() {
    const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
    const socks = new Set();
    const event = (i) => `{"type":"event","seq":${i},"data":{"i": 1, "k": 0, "p": null}}`;
    const frame = (text) => {
        const p = Buffer.from(text);
        if (p.length < 126) return Buffer.concat([Buffer.from([0x81, p.length]), p]);
        const h = Buffer.from([0x81, 126, 0, 0]);
        h.writeUInt16BE(p.length, 2);
        return Buffer.concat([h, p]);
    };
    const bulk = Buffer.concat(Array.from({ length: 256 }, (_, i) => frame(event(1000 + i))));
    const server = net.createServer((c) => {
        c.setNoDelay(true);
        let buf = Buffer.alloc(0);
        let open = false;
        c.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            if (!open) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const key = /sec-websocket-key:\s*(\S+)/i.exec(buf.slice(0, end).toString())[1];
                const accept = createHash('sha1').update(key + GUID).digest('base64');
                c.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
                buf = buf.slice(end + 4);
                open = true;
                socks.add(c);
            }
            for (;;) {          // client frames: masked; answer call frames, close on close
                if (buf.length < 2) return;
                const op = buf[0] & 0x0f;
                let len = buf[1] & 0x7f;
                let off = 2;
                if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
                else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
                if (buf.length < off + 4 + len) return;
                const mask = buf.slice(off, off + 4);
                const p = Buffer.from(buf.slice(off + 4, off + 4 + len));
                for (let i = 0; i < p.length; i++) p[i] ^= mask[i & 3];
                buf = buf.slice(off + 4 + len);
                if (op === 8) { c.end(Buffer.from([0x88, 0])); socks.delete(c); return; }
                if (op === 1) {
                    const m = JSON.parse(p.toString());
                    c.write(frame(`{"type":"reply","id":${m.id},"result":${JSON.stringify(m.args)}}`));
                }
            }
        });
        c.on('error', () => socks.delete(c));
        c.on('close', () => socks.delete(c));
    });
    server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
    process.on('message', (m) => {
        if (!m.blast) return;
        const end = Date.now() + m.blast * 1000;
        for (const c of socks) {
            const pump = () => {
                while (Date.now() < end && socks.has(c)) {
                    if (!c.write(bulk)) { c.once('drain', pump); return; }
                }
            };
            pump();
        }
    });
    process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------

if (mode === 'floor-server') {
    floorServer();
} else {
    const modes = { rtt: modeRtt, room: modeRoom, floor: modeFloor };
    if (!modes[mode]) {
        process.stderr.write('usage: node ws_bench.mjs rtt|room|floor [--option value ...]\n');
        process.exit(2);
    }
    const hard = setTimeout(() => { log('hard stop after 300 s'); process.exit(3); }, 300000);
    hard.unref();
    modes[mode]().then((r) => {
        process.stdout.write(JSON.stringify({ fig: 4, series: mode, ...r }) + '\n');
        process.exit(0);
    }, (e) => {
        process.stderr.write(`ws_bench ${mode}: ${e.stack || e}\n`);
        process.stdout.write(JSON.stringify({ fig: 4, series: mode, sockets: num('sockets', undefined), error: String(e.message || e) }) + '\n');
        process.exit(1);
    });
}
