// Helpers of the WebSocket/HTTP tests (run by test/integration/42_websocket.sh, which defines
// the it42_* classes).  Environment: DURABLE_PORT (the gateway), PGHOST/PGPORT/PGDATABASE
// for psql.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import WebSocket from 'ws';

export const PORT = Number(process.env.DURABLE_PORT || 7432);
export const HOST = '127.0.0.1';
export const WS_BASE = `ws://${HOST}:${PORT}`;
export const HTTP_BASE = `http://${HOST}:${PORT}`;

// the attachment the it42_room $connect gives a socket opened with ?name=NAME (padded so that the
// args of its $close exceed 127 bytes, see 13_close_args.test.mjs)
export const PAD = '.'.repeat(160);
export const attachmentOf = (name) => ({ name: name ?? null, pad: PAD });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// a unique object id per call, so tests never share objects
let idCounter = 0;
export function uid(prefix = 'o') {
    return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++idCounter}`;
}

// psql -X -At -c SQL: the output, trimmed; throws (with psql's stderr) on error
export function sql(query) {
    try {
        return execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', query], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
        }).trim();
    } catch (e) {
        throw new Error(`psql failed: ${query}\n${e.stderr || e.message}`);
    }
}

// SQL literal of a string
export function lit(s) {
    return `'${String(s).replace(/'/g, "''")}'`;
}

// the JSON value of a one-value query (NULL → null)
export function sqlJson(query) {
    const out = sql(query);
    return out === '' ? null : JSON.parse(out);
}

// durable.call from SQL: the handler's result
export function dcall(cls, id, method, args = {}) {
    return sqlJson(`SELECT durable.call(${lit(cls)}, ${lit(id)}, ${lit(method)}, ${lit(JSON.stringify(args))}::jsonb)`);
}

// storage of an object, read by a call of the it42_room handler's "get" method
export function storageGet(cls, id, key) {
    return dcall(cls, id, 'get', { key });
}

// holdStorageLock(cls, id, key, seconds): a session locks the storage row of (cls, id, key)
// FOR UPDATE for that long (so that a host writing it at commit waits); resolves once the
// lock is held, to {ended}: a promise of the session's end
export async function holdStorageLock(cls, id, key, seconds) {
    const app = `lock-${process.pid}-${Date.now()}`;
    const child = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1',
        '-c', 'BEGIN',
        '-c', `SELECT 1 FROM durable._storage WHERE class = ${lit(cls)} AND id = ${lit(id)}
                  AND key = ${lit(key)} FOR UPDATE`,
        '-c', `SELECT pg_sleep(${Number(seconds)})`,
        '-c', 'COMMIT'], { env: { ...process.env, PGAPPNAME: app }, stdio: 'ignore' });
    const ended = new Promise((resolve) => child.on('exit', resolve));
    await waitFor(() => sql(`SELECT count(*) FROM pg_stat_activity
                             WHERE application_name = ${lit(app)} AND query LIKE '%pg_sleep%'`) === '1',
        10000, 'the row lock');
    return { ended };
}

// ALTER SYSTEM SET name = value (or RESET with value null), reload, and give the gateway and
// the hosts time to read it
export async function setSetting(name, value, settleMs = 700) {
    if (value === null || value === undefined) sql(`ALTER SYSTEM RESET ${name}`);
    else sql(`ALTER SYSTEM SET ${name} = ${lit(value)}`);
    sql('SELECT pg_reload_conf()');
    await sleep(settleMs);
}

// poll predicate (sync or async) until truthy; resolves to its value, rejects after timeout
export async function waitFor(predicate, timeout = 10000, what = 'condition', interval = 50) {
    const end = Date.now() + timeout;
    let last;
    for (;;) {
        try {
            last = await predicate();
            if (last) return last;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end) {
            throw new Error(`timed out after ${timeout} ms waiting for ${what}` +
                (last instanceof Error ? ` (last error: ${last.message})` : ''));
        }
        await sleep(interval);
    }
}

// A WebSocket client with a queue of what it received.
export class Client {
    constructor(ws) {
        this.ws = ws;
        this.messages = [];     // {text, json, at} of every text message, in order
        this.events = [];       // every event: {seq, data, at}, or {seq, bin, at} for a binary one
        this.gaps = [];         // the oldest of every "gap" frame
        this.waiters = [];
        this.closed = null;     // {code, reason, at} once closed
        this.nextId = 1;
        this.opened = Date.now();
        ws.on('message', (data, isBinary) => {
            const text = isBinary ? data : data.toString('utf8');
            let json;
            try { json = isBinary ? undefined : JSON.parse(text); } catch { json = undefined; }
            const m = { text, json, at: Date.now() };
            this.messages.push(m);
            if (isBinary) {
                // the bytes of the binary event announced by the frame before
                if (this.binarySeq === undefined) this.strayBinary = (this.strayBinary || 0) + 1;
                else this.events.push({ seq: this.binarySeq, bin: Buffer.from(data), at: m.at });
                this.binarySeq = undefined;
            } else if (this.binarySeq !== undefined) {
                this.strayBinary = (this.strayBinary || 0) + 1;    // a header not followed by its bytes
                this.binarySeq = undefined;
            }
            if (json && json.type === 'event') this.events.push({ seq: json.seq, data: json.data, at: m.at });
            if (json && json.type === 'binary') this.binarySeq = json.seq;
            if (json && json.type === 'gap') this.gaps.push(json.oldest);
            this._wake();
        });
        this.closedPromise = new Promise((resolve) => {
            ws.on('close', (code, reason) => {
                this.closed = { code, reason: reason.toString('utf8'), at: Date.now() };
                this._wake();
                resolve(this.closed);
            });
        });
        ws.on('error', (e) => { this.error = e; this._wake(); });
    }

    _wake() {
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w();
    }

    // resolve with the first message (from index `from`) matching pred, or reject after timeout
    next(pred = () => true, timeout = 10000, from = 0) {
        return new Promise((resolve, reject) => {
            const check = () => {
                for (let i = from; i < this.messages.length; i++) {
                    if (pred(this.messages[i])) return resolve(this.messages[i]);
                }
                if (this.closed) return reject(new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting for a message`));
                this.waiters.push(check);
            };
            const timer = setTimeout(() => {
                reject(new Error(`no matching message within ${timeout} ms; got ${JSON.stringify(this.messages.map((m) => m.text)).slice(0, 500)}`));
            }, timeout);
            const orig = resolve;
            resolve = (v) => { clearTimeout(timer); orig(v); };
            const origRej = reject;
            reject = (e) => { clearTimeout(timer); origRej(e); };
            check();
        });
    }

    send(obj) {
        this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
    }

    // send a call frame and wait for its reply or error frame: the frame
    async call(method, args = {}, { id, timeout = 10000 } = {}) {
        const frameId = id === undefined ? this.nextId++ : id;
        const from = this.messages.length;
        this.send({ type: 'call', id: frameId, method, args });
        const m = await this.next((x) => x.json && (x.json.type === 'reply' || x.json.type === 'error') &&
            JSON.stringify(x.json.id) === JSON.stringify(frameId), timeout, from);
        return m.json;
    }

    // the call's result; throws on an error frame
    async result(method, args = {}, opts = {}) {
        const r = await this.call(method, args, opts);
        if (r.type !== 'reply') throw new Error(`${method} failed: ${JSON.stringify(r.error)}`);
        return r.result;
    }

    waitClose(timeout = 10000) {
        if (this.closed) return Promise.resolve(this.closed);
        let timer;
        return Promise.race([
            this.closedPromise,
            new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error(`socket not closed within ${timeout} ms`)), timeout);
            }),
        ]).finally(() => clearTimeout(timer));
    }

    async close(code = 1000, reason = '') {
        if (!this.closed) {
            this.ws.close(code, reason);
            await this.waitClose(10000).catch(() => this.ws.terminate());
        }
    }
}

export function objectUrl(cls, id, query) {
    let url = `${WS_BASE}/objects/${cls}/${encodeURIComponent(id)}`;
    if (query) {
        const qs = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
        if (qs) url += `?${qs}`;
    }
    return url;
}

// Open a WebSocket to /objects/{cls}/{id}; resolves to an open Client, rejects with
// err.status / err.body when the server answered the upgrade with an HTTP status.
export function connect(cls, id, { query, headers, origin, url, timeout = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const opts = { headers: headers || {}, handshakeTimeout: timeout };
        if (origin !== undefined) opts.origin = origin;
        const ws = new WebSocket(url || objectUrl(cls, id, query), opts);
        const client = new Client(ws);   // listens from the start: nothing is missed
        ws.once('open', () => resolve(client));
        ws.once('unexpected-response', (req, res) => {
            let body = '';
            res.on('data', (c) => { body += c; });
            res.on('end', () => {
                const e = new Error(`upgrade refused: HTTP ${res.statusCode} ${body}`);
                e.status = res.statusCode;
                e.body = body;
                try { e.json = JSON.parse(body); } catch { /* not JSON */ }
                reject(e);
                ws.terminate();
            });
        });
        ws.once('error', (e) => reject(e));
        ws.once('close', (code, reason) => reject(Object.assign(
            new Error(`closed before open: ${code} ${reason}`), { code })));
    });
}

// the HTTP status an upgrade attempt gets: 101 when it opened (the socket is closed again)
export async function upgradeStatus(cls, id, opts = {}) {
    try {
        const c = await connect(cls, id, opts);
        await c.close();
        return 101;
    } catch (e) {
        if (e.status) return e.status;
        throw e;
    }
}

// plain HTTP request: {status, headers, body, json}
export function request(method, path, { body, headers = {}, timeout = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: HOST, port: PORT, method, path, headers, timeout, agent: false }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                let json;
                try { json = JSON.parse(text); } catch { json = undefined; }
                resolve({ status: res.statusCode, headers: res.headers, body: text, json });
            });
        });
        req.on('timeout', () => req.destroy(new Error(`HTTP ${method} ${path}: no answer within ${timeout} ms`)));
        req.on('error', reject);
        if (body !== undefined) req.write(body);
        req.end();
    });
}

// GET /metrics: {name: value} summed over labels
export async function metrics() {
    const r = await request('GET', '/metrics');
    if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
    const out = {};
    for (const line of r.body.split('\n')) {
        const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
        if (m) out[m[1]] = (out[m[1]] || 0) + Number(m[3]);
    }
    return out;
}

// pid of this cluster's gateway worker (a child of the postmaster of $PGDATA), or ''
// the pids of the host workers, comma-separated ('-' for a slot whose process is not running)
export function hostPids() {
    return sql("SELECT coalesce(string_agg(coalesce(pid::text, '-'), ',' ORDER BY host), '') FROM durable.hosts");
}

// whether every host of the list before (from hostPids) still runs: calls may start more hosts
// (they start on demand), but none may have died
export function hostsSurvived(before) {
    const now = hostPids().split(',');
    return before.split(',').filter((p) => p !== '').every((p) => p !== '-' && now.includes(p));
}

export function gatewayPid() {
    const pm = readFileSync(`${process.env.PGDATA}/postmaster.pid`, 'utf8').split('\n')[0].trim();
    try {
        return execFileSync('pgrep', ['-P', pm, '-f', 'pg_durable_objects gateway'], { encoding: 'utf8' })
            .trim().split('\n')[0];
    } catch {
        return '';
    }
}

// the open sockets of one object, from the view durable.sockets_all
export function socketsOf(cls, id) {
    return sqlJson(`SELECT coalesce(jsonb_agg(jsonb_build_object('socket', socket, 'tags', to_jsonb(tags),
        'attachment', attachment) ORDER BY socket), '[]') FROM durable.sockets_all
        WHERE class = ${lit(cls)} AND id = ${lit(id)}`);
}

export async function closeAll(clients) {
    await Promise.all(clients.filter(Boolean).map((c) => c.close().catch(() => {})));
}

// ---------------------------------------------------------------------------------------------
// raw WebSocket clients: any frame, good or bad, and every byte the server sends back

// a client frame: opcode, payload (string or Buffer); options fin (true), mask (true), rsv (0..7),
// len (the length to announce instead of the payload's)
export function wsFrame(opcode, payload = '', { fin = true, mask = true, rsv = 0, len } = {}) {
    const p = Buffer.from(payload);
    const n = len ?? p.length;
    let head;
    if (n < 126) head = Buffer.from([0, n]);
    else if (n < 65536) {
        head = Buffer.alloc(4);
        head[1] = 126;
        head.writeUInt16BE(n, 2);
    } else {
        head = Buffer.alloc(10);
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(n), 2);
    }
    head[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
    if (!mask) return Buffer.concat([head, p]);
    head[1] |= 0x80;
    const key = crypto.randomBytes(4);
    const body = Buffer.from(p);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
    return Buffer.concat([head, key, body]);
}

// the payload of a close frame: code (a number or null for none) and reason (string or Buffer)
export function closePayload(code, reason = '') {
    if (code === null) return Buffer.alloc(0);
    const b = Buffer.alloc(2);
    b.writeUInt16BE(code);
    return Buffer.concat([b, Buffer.from(reason)]);
}

export class RawSocket {
    // open a TCP connection and upgrade url (rejects unless the answer is 101)
    static open(url, { headers = '' } = {}) {
        const path = url.replace(/^ws:\/\/[^/]+/, '');
        return new Promise((resolve, reject) => {
            const sock = net.connect(PORT, HOST);
            let buf = Buffer.alloc(0);
            const timer = setTimeout(() => { sock.destroy(); reject(new Error('no upgrade answer')); }, 10000);
            sock.on('error', (e) => { clearTimeout(timer); reject(e); });
            sock.on('connect', () => {
                sock.setNoDelay(true);
                sock.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\n` +
                    'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
                    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n${headers}\r\n`);
            });
            const onData = (d) => {
                buf = Buffer.concat([buf, d]);
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                clearTimeout(timer);
                sock.off('data', onData);
                const head = buf.subarray(0, end).toString();
                if (!/^HTTP\/1\.1 101/.test(head)) {
                    sock.destroy();
                    reject(Object.assign(new Error(`upgrade answered ${head.split('\r\n')[0]}`), { head }));
                    return;
                }
                resolve(new RawSocket(sock, buf.subarray(end + 4)));
            };
            sock.on('data', onData);
        });
    }

    constructor(sock, rest) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.frames = [];       // {fin, rsv, opcode, payload, at} of every server frame, in order
        this.ended = null;      // time the server ended the connection (FIN or reset)
        this.waiters = [];
        this.endedPromise = new Promise((resolve) => {
            const done = () => { if (!this.ended) this.ended = Date.now(); this._wake(); resolve(this.ended); };
            sock.on('end', done);
            sock.on('close', done);
            sock.on('error', () => {});
        });
        sock.on('data', (d) => this._data(d));
        if (rest.length) this._data(rest);
    }

    _wake() {
        const ws = this.waiters;
        this.waiters = [];
        for (const w of ws) w();
    }

    _data(d) {
        this.buf = Buffer.concat([this.buf, d]);
        for (;;) {
            if (this.buf.length < 2) break;
            const b0 = this.buf[0];
            const b1 = this.buf[1];
            let len = b1 & 0x7f;
            let at = 2;
            if (len === 126) {
                if (this.buf.length < 4) break;
                len = this.buf.readUInt16BE(2);
                at = 4;
            } else if (len === 127) {
                if (this.buf.length < 10) break;
                len = Number(this.buf.readBigUInt64BE(2));
                at = 10;
            }
            if (b1 & 0x80) at += 4;     // a server must not mask: kept as a (bad) frame
            if (this.buf.length < at + len) break;
            this.frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f,
                masked: (b1 & 0x80) !== 0, payload: this.buf.subarray(at, at + len), at: Date.now() });
            this.buf = this.buf.subarray(at + len);
        }
        this._wake();
    }

    send(...bufs) {
        this.sock.write(Buffer.concat(bufs));
    }

    // text of the call frame as the client sends it
    call(id, method, args = {}) {
        this.send(wsFrame(1, JSON.stringify({ type: 'call', id, method, args })));
    }

    // the first frame (from index from) matching pred
    next(pred = () => true, timeout = 10000, from = 0) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeout} ms; ` +
                `got ${JSON.stringify(this.frames.map((f) => [f.opcode, f.payload.toString('latin1')]))}`)), timeout);
            const check = () => {
                for (let i = from; i < this.frames.length; i++) {
                    if (pred(this.frames[i])) { clearTimeout(timer); resolve(this.frames[i]); return; }
                }
                if (this.ended) { clearTimeout(timer); reject(new Error('connection ended while waiting')); return; }
                this.waiters.push(check);
            };
            check();
        });
    }

    // the server's Close frame: {code (null: none), reason, at, index}
    async closeFrame(timeout = 10000) {
        const f = await this.next((x) => x.opcode === 8, timeout);
        return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null,
            reason: f.payload.subarray(2).toString(), at: f.at, index: this.frames.indexOf(f) };
    }

    // resolves with the time the server ended the connection, rejects after timeout
    waitEnd(timeout = 10000) {
        let timer;
        return Promise.race([this.endedPromise, new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`connection not ended within ${timeout} ms`)), timeout);
        })]).finally(() => clearTimeout(timer));
    }

    destroy() {
        this.sock.destroy();
    }
}

// raw HTTP: write text (string or Buffer) on a new connection; resolves to {text, ms, ended} once the
// server closes it, once `answers` whole answers came (if given), or after wait ms (ended false)
export function rawHttp(text, wait = 10000, { answers } = {}) {
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const sock = net.connect(PORT, HOST, () => sock.write(text));
        let out = Buffer.alloc(0);
        let done = false;
        const finish = (ended) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            resolve({ text: out.toString('latin1'), ms: Date.now() - t0, ended });
        };
        const timer = setTimeout(() => finish(false), wait);
        sock.on('data', (d) => {
            out = Buffer.concat([out, d]);
            if (answers && parseAnswers(out.toString('latin1')).length >= answers) finish(false);
        });
        sock.on('end', () => finish(true));
        sock.on('close', () => finish(true));
        sock.on('error', (e) => (done ? null : e.code === 'ECONNRESET' ? finish(true) : reject(e)));
    });
}

// the HTTP answers in a stream of bytes: [{status, headers, body}] (bodies by Content-Length)
export function parseAnswers(text) {
    const out = [];
    let rest = Buffer.from(text, 'latin1');
    for (;;) {
        const end = rest.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = rest.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(head[0].split(' ')[1]);
        const headers = {};
        for (const line of head.slice(1)) {
            const i = line.indexOf(':');
            headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] || 0);
        out.push({ status, headers, body: rest.subarray(end + 4, end + 4 + len).toString('utf8') });
        rest = rest.subarray(end + 4 + len);
    }
    return out;
}
