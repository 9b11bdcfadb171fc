// Helpers of the WebSocket/HTTP tests (run by test/integration/42_websocket.sh, which defines
// the it42_* classes).  Environment: DURABLE_PORT (the gateway), PGHOST/PGPORT/PGDATABASE
// for psql.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
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
        this.events = [];       // data of every "event" frame, with seq: {seq, data, at}
        this.waiters = [];
        this.closed = null;     // {code, reason, at} once closed
        this.nextId = 1;
        this.opened = Date.now();
        ws.on('message', (data, isBinary) => {
            const text = isBinary ? data : data.toString('utf8');
            let json;
            try { json = JSON.parse(text); } catch { json = undefined; }
            const m = { text, json, at: Date.now() };
            this.messages.push(m);
            if (json && json.type === 'event') this.events.push({ seq: json.seq, data: json.data, at: m.at });
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
