// durable.js — the JavaScript client of pg_durable_objects (browser and Node 20, no build step).
//
//   import { connect } from './durable.js';
//   const room = connect('ws://127.0.0.1:7432/objects/chat/lobby', { params: { name: 'ada' } });
//   room.on('event', (data, seq) => console.log(seq, data));
//   room.on('gap', () => reloadTheState());
//   const reply = await room.call('say', { text: 'hello' });
//
// A handle keeps one WebSocket to one object.  Calls are matched to their replies by id and
// rejected with a DurableError (SQLSTATE code and message) on an error frame, on timeout and
// when the socket drops.  Events carry the object's durable seq: the handle remembers the last
// one and reconnects with ?since=lastSeq, so the events committed while it was away are
// replayed (duplicates dropped); when they are no longer retained it raises 'gap'.  Binary
// data goes both ways (ArrayBuffer / typed arrays out, Uint8Array events in).  Transient
// failures (network, 503, closes 1001/1006/1008/1011-1014) reconnect with exponential backoff
// and jitter; permanent ones (upgrade answered 4xx, a $connect refusal 4000-4999, a close by
// the object) stop the handle and reject ready() and every call with the server's code.

const DEFAULTS = {
    params: {},
    protocols: undefined,
    WebSocket: undefined,
    callTimeout: 10000,
    queue: true,
    reconnect: true,
    resume: true,
    since: undefined,
    minDelay: 250,
    maxDelay: 10000,
    jitter: 0.5,
};

// closes after which the same socket may well work again: going away (a gateway restart),
// no close frame (network), slow consumer (resumed from lastSeq), server error, restart,
// try again later, bad gateway (a proxy); 1005: no code at all
const TRANSIENT_CLOSES = new Set([1001, 1005, 1006, 1008, 1011, 1012, 1013, 1014]);

// the id of the frame that tells the handle its socket was accepted by $connect: a call
// frame without a method, which the gateway answers itself (22023, nothing runs), and only
// after $connect accepted the socket and the events owed to it were sent
const ACCEPTED_ID = 'durable.js:accepted';

/**
 * An error of a call or of the connection: code is a SQLSTATE (from the object or the
 * gateway), a close code as a string ('4401') when the object refused or closed the socket,
 * or CLOSED / TIMEOUT / NOT_CONNECTED.  status: the HTTP status of a refused upgrade;
 * closeCode: the WebSocket close code that stopped the handle.
 */
export class DurableError extends Error {
    constructor(code, message, extra = {}) {
        super(message);
        this.name = 'DurableError';
        this.code = code;
        if (extra.status !== undefined) this.status = extra.status;
        if (extra.closeCode !== undefined) this.closeCode = extra.closeCode;
    }
}

function withParams(url, params) {
    const entries = Object.entries(params || {});
    if (entries.length === 0) return url;
    const query = entries
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join('&');
    return url + (url.includes('?') ? '&' : '?') + query;
}

/**
 * The URL of object (className, id) on a gateway base URL such as ws://127.0.0.1:7432; with
 * options.database, of that database of the server's durable.database (/db/NAME/objects/...),
 * else of its first one (a base URL may also end in /db/NAME itself).
 */
export function objectUrl(base, className, id, options = {}) {
    const db = options.database == null ? '' : `/db/${encodeURIComponent(options.database)}`;
    return `${base.replace(/\/+$/, '')}${db}/objects/${encodeURIComponent(className)}/${encodeURIComponent(id)}`;
}

// data that goes as a binary frame: an ArrayBuffer, a typed array, a DataView or a Blob
function isBinary(data) {
    return data instanceof ArrayBuffer || ArrayBuffer.isView(data) ||
        (typeof Blob !== 'undefined' && data instanceof Blob);
}

// a copy of the bytes of a view (the app may reuse its buffer while the frame waits)
function copyBytes(data) {
    if (data instanceof ArrayBuffer) return data.slice(0);
    if (ArrayBuffer.isView(data)) return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    return data;
}

// the bytes of a received binary message as a Uint8Array over an ArrayBuffer of exactly them
function toBytes(data) {
    if (data instanceof ArrayBuffer) return new Uint8Array(data);
    if (ArrayBuffer.isView(data)) return new Uint8Array(copyBytes(data));
    if (Array.isArray(data)) {   // the ws package's 'fragments' binaryType
        const n = data.reduce((a, b) => a + b.byteLength, 0);
        const out = new Uint8Array(n);
        let at = 0;
        for (const b of data) { out.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), at); at += b.byteLength; }
        return out;
    }
    return data;
}

// whether an HTTP answer to the upgrade (or to a plain GET of its URL) means "never": 4xx but
// 408 (timeout), 426 (the URL is fine, a plain GET gets it) and 429 (too many requests)
const isPermanentStatus = (status) => status >= 400 && status < 500 && ![408, 426, 429].includes(status);

function upgradeError(status, body) {
    let err = null;
    try { err = JSON.parse(body).error; } catch { /* not our JSON */ }
    return new DurableError(err?.code ?? `HTTP_${status}`,
        err?.message ?? `the WebSocket upgrade was answered with HTTP ${status}`, { status });
}

export class DurableSocket {
    constructor(url, options = {}) {
        this.url = withParams(url, options.params);
        this.options = { ...DEFAULTS, ...options };
        this.Ws = this.options.WebSocket || globalThis.WebSocket;
        if (!this.Ws) {
            throw new Error('no WebSocket implementation: pass options.WebSocket (e.g. the "ws" package in Node)');
        }
        this.listeners = new Map();
        this.reconnectHooks = [];
        this.pending = new Map();   // call id -> { resolve, reject, timer }
        this.queued = [];           // frames waiting for the socket: { id, frame }
        this.nextId = 1;
        this.attempt = 0;
        this.closedByUser = false;
        this.opened = false;        // accepted at least once
        this.state = 'connecting';
        this.error = null;          // why the handle stopped (a DurableError), once it has
        this.lastSeq = Number.isSafeInteger(this.options.since) ? this.options.since : null;
        this.binarySeq = undefined; // seq announced by a "binary" frame for the next binary message
        this.#open();
    }

    /** Call method on the object; resolves with its result. */
    call(method, args = {}, { timeout = this.options.callTimeout } = {}) {
        return new Promise((resolve, reject) => {
            const id = this.nextId++;
            const frame = JSON.stringify({ type: 'call', id, method, args });
            const timer = timeout > 0
                ? setTimeout(() => {
                    this.pending.delete(id);
                    this.queued = this.queued.filter((q) => q.id !== id);
                    reject(new DurableError('TIMEOUT', `call ${method} timed out after ${timeout} ms`));
                }, timeout)
                : null;
            this.pending.set(id, { resolve, reject, timer });
            const refused = this.#sendOrQueue(id, frame);
            if (refused) this.#settle(id, null, refused);
        });
    }

    /**
     * Send a frame without waiting for anything: an ArrayBuffer, typed array, DataView or Blob
     * goes as a binary frame ($message gets {"binary": base64}), anything else as JSON text
     * ($message gets {"data": data}).
     */
    send(data) {
        const refused = isBinary(data) ? this.#sendOrQueue(null, copyBytes(data))
            : this.#sendOrQueue(null, JSON.stringify(data));
        if (refused) throw refused;
    }

    /**
     * Listen: 'event' (data, seq), 'gap' ({oldest, since}), 'open', 'reconnect',
     * 'close' ({code, reason, willReconnect, error}), 'error' (error), 'frame' (any other frame).
     * Returns an unsubscribe function.
     */
    on(name, fn) {
        if (!this.listeners.has(name)) this.listeners.set(name, new Set());
        this.listeners.get(name).add(fn);
        return () => this.listeners.get(name).delete(fn);
    }

    /** Run fn after every reconnect (not the first open), after the events missed were replayed. */
    onReconnect(fn) {
        this.reconnectHooks.push(fn);
        return () => { this.reconnectHooks = this.reconnectHooks.filter((h) => h !== fn); };
    }

    /**
     * Resolves once the object accepted the socket; rejects with the error that stopped the
     * handle (a refusal, a 404/403 upgrade, close()), or with TIMEOUT after timeout ms
     * (default callTimeout; 0: no limit) while it keeps trying.
     */
    ready({ timeout = this.options.callTimeout } = {}) {
        if (this.state === 'open') return Promise.resolve();
        if (this.state === 'closed') return Promise.reject(this.error);
        return new Promise((resolve, reject) => {
            let timer = null;
            const done = () => { offOpen(); offClose(); clearTimeout(timer); };
            const offOpen = this.on('open', () => { done(); resolve(); });
            const offClose = this.on('close', (c) => { if (!c.willReconnect) { done(); reject(c.error); } });
            if (timeout > 0) {
                timer = setTimeout(() => {
                    done();
                    reject(new DurableError('TIMEOUT', `not connected after ${timeout} ms (still trying)`));
                }, timeout);
            }
        });
    }

    /** Close for good: no reconnect; pending and queued calls are rejected. */
    close(code = 1000, reason = '') {
        if (this.state === 'closed') return;
        this.closedByUser = true;
        clearTimeout(this.retryTimer);
        if (this.ws && (this.ws.readyState === 0 || this.ws.readyState === 1)) this.ws.close(code, reason);
        this.#stop(new DurableError('CLOSED', 'the socket was closed'), code, reason);
    }

    #emit(name, ...args) {
        for (const fn of this.listeners.get(name) || []) {
            try { fn(...args); } catch (e) { setTimeout(() => { throw e; }); }
        }
    }

    // send a frame now, queue it, or return the error that refuses it
    #sendOrQueue(id, frame) {
        if (this.state === 'open') {
            this.ws.send(frame);
            return null;
        }
        if (this.state === 'closed') {
            return this.closedByUser ? new DurableError('NOT_CONNECTED', 'the socket was closed') : this.error;
        }
        if (!this.options.queue) return new DurableError('NOT_CONNECTED', 'the socket is not open');
        this.queued.push({ id, frame });
        return null;
    }

    #settle(id, result, error) {
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        if (error) p.reject(error); else p.resolve(result);
    }

    #failAll(error) {
        for (const id of [...this.pending.keys()]) this.#settle(id, null, error);
        this.queued = [];
    }

    // the handle stops for good: everything waiting is rejected with error
    #stop(error, code, reason) {
        const wasClosed = this.state === 'closed';
        this.state = 'closed';
        this.error = error;
        this.#failAll(error);
        if (!wasClosed) this.#emit('close', { code, reason, willReconnect: false, error });
    }

    // the URL of the next attempt: with ?since=lastSeq once the handle knows its position
    #attemptUrl() {
        if (!this.options.resume || this.lastSeq === null) return this.url;
        return `${this.url}${this.url.includes('?') ? '&' : '?'}since=${this.lastSeq}`;
    }

    #open() {
        this.state = this.opened ? 'reconnecting' : 'connecting';
        this.binarySeq = undefined;
        const url = this.#attemptUrl();
        const ws = this.options.protocols ? new this.Ws(url, this.options.protocols) : new this.Ws(url);
        ws.binaryType = 'arraybuffer';
        this.ws = ws;
        let upgraded = false;       // the WebSocket opened (the upgrade was accepted)
        let refused = null;         // a DurableError when the upgrade was answered with a permanent 4xx
        // the ws package (Node) shows the HTTP answer of a refused upgrade; browsers do not
        const showsAnswers = typeof ws.once === 'function';
        if (showsAnswers) {
            ws.once('unexpected-response', (req, res) => {
                let body = '';
                res.setEncoding?.('utf8');
                res.on('data', (c) => { body += c; });
                res.on('end', () => {
                    if (isPermanentStatus(res.statusCode)) refused = upgradeError(res.statusCode, body);
                    ws.terminate();
                });
                res.on('error', () => ws.terminate());
            });
        }
        ws.onopen = () => {
            upgraded = true;
            // held by the gateway until $connect answers; its answer means "accepted"
            ws.send(JSON.stringify({ type: 'call', id: ACCEPTED_ID }));
        };
        ws.onmessage = (ev) => {
            if (ws !== this.ws) return;
            if (typeof ev.data !== 'string') { this.#onBinary(toBytes(ev.data)); return; }
            let msg;
            try { msg = JSON.parse(ev.data); } catch {
                this.#emit('frame', ev.data);
                return;
            }
            this.#onFrame(msg);
        };
        ws.onerror = (ev) => {
            // a failed attempt is reported by 'close'; errors of an open socket are news
            if (ws === this.ws && this.state === 'open') this.#emit('error', ev?.error || new Error('WebSocket error'));
        };
        ws.onclose = async (ev) => {
            if (ws !== this.ws || this.state === 'closed') return;
            const code = ev.code;
            const reason = ev.reason ? String(ev.reason) : '';
            this.state = 'reconnecting';
            // a browser sees only 1006 for a refused upgrade: ask the same URL over HTTP why
            // (nothing is in flight before the upgrade: calls wait for the acceptance)
            if (!upgraded && !showsAnswers && code === 1006) {
                refused = await this.#probe(url);
                if (this.state === 'closed') return;   // close() meanwhile
            }
            let error = refused;
            if (!error && !TRANSIENT_CLOSES.has(code)) {
                // refused by $connect (4000-4999), closed by the object (1000, 3000-4999) or a
                // protocol error of ours (1002, 1003, 1007, 1009): trying again changes nothing
                error = new DurableError(String(code), reason || `the server closed the socket (${code})`,
                                         { closeCode: code });
            }
            if (!error && !this.options.reconnect) {
                error = new DurableError('CLOSED', `the socket closed (${code})`, { closeCode: code });
            }
            // calls in flight may or may not have run: reject them, the app decides (with the
            // error that stops the handle, else CLOSED); queued ones wait for the next socket
            const queuedIds = new Set(this.queued.map((q) => q.id));
            for (const id of [...this.pending.keys()]) {
                if (!queuedIds.has(id)) {
                    this.#settle(id, null, error || new DurableError('CLOSED', `the socket closed (${code}) before the reply`));
                }
            }
            if (error) {
                this.#stop(error, code, reason);
                return;
            }
            this.#emit('close', { code, reason, willReconnect: true, error: null });
            this.#scheduleReconnect();
        };
    }

    // GET the WebSocket URL as http(s): the gateway answers it as it answered the upgrade
    // (404, 403, 503), else 426.  Returns a DurableError for a permanent answer, else null.
    async #probe(url) {
        if (typeof fetch !== 'function') return null;
        try {
            const res = await fetch(url.replace(/^ws/, 'http'), {
                cache: 'no-store',
                signal: typeof AbortSignal.timeout === 'function' ? AbortSignal.timeout(5000) : undefined,
            });
            const body = await res.text();
            return isPermanentStatus(res.status) ? upgradeError(res.status, body) : null;
        } catch {
            return null;    // unreachable, or a cross-origin answer we may not read
        }
    }

    #accepted() {
        const reconnected = this.opened;
        this.opened = true;
        this.attempt = 0;
        this.state = 'open';
        const queued = this.queued;
        this.queued = [];
        for (const q of queued) this.ws.send(q.frame);
        this.#emit('open');
        if (reconnected) {
            this.#emit('reconnect');
            for (const hook of this.reconnectHooks) {
                Promise.resolve().then(() => hook(this)).catch((e) => this.#emit('error', e));
            }
        }
    }

    // a seq already delivered (a replay overlapping what the handle saw) is dropped
    #isNew(seq) {
        if (typeof seq !== 'number') return true;
        if (this.lastSeq !== null && seq <= this.lastSeq) return false;
        this.lastSeq = seq;
        return true;
    }

    #onFrame(msg) {
        switch (msg && msg.type) {
        case 'reply':
            this.#settle(msg.id, msg.result, null);
            return;
        case 'error': {
            if (msg.id === ACCEPTED_ID) {
                if (this.state !== 'open') this.#accepted();
                return;
            }
            const err = new DurableError(msg.error?.code ?? 'XX000', msg.error?.message ?? 'error');
            if (msg.id !== null && msg.id !== undefined && this.pending.has(msg.id)) this.#settle(msg.id, null, err);
            else this.#emit('error', err);
            return;
        }
        case 'event':
            if (this.#isNew(msg.seq)) this.#emit('event', msg.data, msg.seq);
            return;
        case 'binary':
            this.binarySeq = msg.seq;
            return;
        case 'gap': {
            const since = this.lastSeq;
            // a stream behind what the handle saw (the database was restored from a backup):
            // what follows is new to the app all the same
            if (since !== null && msg.oldest <= since) this.lastSeq = msg.oldest - 1;
            this.#emit('gap', { oldest: msg.oldest, since });
            return;
        }
        default:
            this.#emit('frame', msg);
        }
    }

    #onBinary(bytes) {
        const seq = this.binarySeq;
        this.binarySeq = undefined;
        if (seq === undefined) { this.#emit('frame', bytes); return; }
        if (this.#isNew(seq)) this.#emit('event', bytes, seq);
    }

    #scheduleReconnect() {
        const { minDelay, maxDelay, jitter } = this.options;
        const base = Math.min(maxDelay, minDelay * 2 ** this.attempt);
        const delay = base * (1 - jitter + Math.random() * jitter * 2);
        this.attempt += 1;
        this.retryTimer = setTimeout(() => { if (this.state !== 'closed') this.#open(); }, delay);
    }
}

/** Connect to one object: returns its handle at once; see DurableSocket. */
export function connect(url, options = {}) {
    return new DurableSocket(url, options);
}
