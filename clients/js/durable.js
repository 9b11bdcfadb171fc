// durable.js — the JavaScript client of pg_durable_objects (browser and Node 20, no build step).
//
//   import { connect } from './durable.js';
//   const room = connect('ws://127.0.0.1:7432/objects/chat/lobby', { params: { name: 'ada' } });
//   room.on('event', (data) => console.log(data));
//   const reply = await room.call('say', { text: 'hello' });
//
// A handle keeps one WebSocket to one object.  Calls are matched to their replies by id and
// rejected with a DurableError (SQLSTATE code and message) on an error frame, on timeout and
// when the socket drops.  The handle reconnects with exponential backoff and jitter; onReconnect
// hooks run after each reconnect so the app can resynchronise its state.  Calls made while
// disconnected wait for the socket (queue: true, the default) or are rejected at once.

const DEFAULTS = {
    params: {},
    protocols: undefined,
    WebSocket: undefined,
    callTimeout: 10000,
    queue: true,
    reconnect: true,
    minDelay: 250,
    maxDelay: 10000,
    jitter: 0.5,
};

/** An error of a call: code is a SQLSTATE, or CLOSED / TIMEOUT / NOT_CONNECTED. */
export class DurableError extends Error {
    constructor(code, message) {
        super(message);
        this.name = 'DurableError';
        this.code = code;
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

/** The URL of object (className, id) on a gateway base URL such as ws://127.0.0.1:7432. */
export function objectUrl(base, className, id) {
    return `${base.replace(/\/+$/, '')}/objects/${encodeURIComponent(className)}/${encodeURIComponent(id)}`;
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
        this.queued = [];           // frames waiting for the socket
        this.nextId = 1;
        this.attempt = 0;
        this.closedByUser = false;
        this.opened = false;
        this.state = 'connecting';
        this.lastSeq = 0;
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
                    reject(new DurableError('TIMEOUT', `call ${method} timed out after ${timeout} ms`));
                }, timeout)
                : null;
            this.pending.set(id, { resolve, reject, timer });
            if (this.state === 'open') {
                this.ws.send(frame);
            } else if (this.options.queue && !this.closedByUser) {
                this.queued.push({ id, frame });
            } else {
                this.#settle(id, null, new DurableError('NOT_CONNECTED', 'the socket is not open'));
            }
        });
    }

    /** Send any JSON value as a frame; the object receives it in $message. */
    send(data) {
        const frame = JSON.stringify(data);
        if (this.state === 'open') this.ws.send(frame);
        else if (this.options.queue && !this.closedByUser) this.queued.push({ id: null, frame });
        else throw new DurableError('NOT_CONNECTED', 'the socket is not open');
    }

    /**
     * Listen: 'event' (data, seq), 'open', 'close' ({code, reason, willReconnect}),
     * 'reconnect' (attempt), 'error' (error), 'frame' (any other frame).  Returns an unsubscribe function.
     */
    on(name, fn) {
        if (!this.listeners.has(name)) this.listeners.set(name, new Set());
        this.listeners.get(name).add(fn);
        return () => this.listeners.get(name).delete(fn);
    }

    /** Run fn after every reconnect (not the first open), e.g. to fetch the full state again. */
    onReconnect(fn) {
        this.reconnectHooks.push(fn);
        return () => { this.reconnectHooks = this.reconnectHooks.filter((h) => h !== fn); };
    }

    /** A promise that resolves once the socket is open. */
    ready() {
        if (this.state === 'open') return Promise.resolve();
        return new Promise((resolve, reject) => {
            const offOpen = this.on('open', () => { offOpen(); offClose(); resolve(); });
            const offClose = this.on('close', (c) => {
                if (!c.willReconnect) { offOpen(); offClose(); reject(new DurableError('CLOSED', `closed: ${c.code} ${c.reason}`)); }
            });
        });
    }

    /** Close for good: no reconnect; pending and queued calls are rejected. */
    close(code = 1000, reason = '') {
        this.closedByUser = true;
        clearTimeout(this.retryTimer);
        if (this.ws && (this.ws.readyState === 0 || this.ws.readyState === 1)) this.ws.close(code, reason);
        this.#failAll(new DurableError('CLOSED', 'the socket was closed'));
        this.state = 'closed';
    }

    #emit(name, ...args) {
        for (const fn of this.listeners.get(name) || []) {
            try { fn(...args); } catch (e) { setTimeout(() => { throw e; }); }
        }
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

    #open() {
        this.state = 'connecting';
        const ws = this.options.protocols ? new this.Ws(this.url, this.options.protocols) : new this.Ws(this.url);
        this.ws = ws;
        ws.onopen = () => {
            const reconnected = this.opened;
            this.opened = true;
            this.attempt = 0;
            this.state = 'open';
            const queued = this.queued;
            this.queued = [];
            for (const q of queued) ws.send(q.frame);
            this.#emit('open');
            if (reconnected) {
                this.#emit('reconnect');
                for (const hook of this.reconnectHooks) {
                    Promise.resolve().then(() => hook(this)).catch((e) => this.#emit('error', e));
                }
            }
        };
        ws.onmessage = (ev) => {
            let msg;
            try { msg = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data)); } catch {
                this.#emit('frame', ev.data);
                return;
            }
            if (msg && msg.type === 'reply') {
                this.#settle(msg.id, msg.result, null);
            } else if (msg && msg.type === 'error') {
                const err = new DurableError(msg.error?.code ?? 'XX000', msg.error?.message ?? 'error');
                if (msg.id !== null && msg.id !== undefined && this.pending.has(msg.id)) this.#settle(msg.id, null, err);
                else this.#emit('error', err);
            } else if (msg && msg.type === 'event') {
                this.lastSeq = msg.seq;
                this.#emit('event', msg.data, msg.seq);
            } else {
                this.#emit('frame', msg);
            }
        };
        ws.onerror = (ev) => { this.#emit('error', ev?.error || new Error('WebSocket error')); };
        ws.onclose = (ev) => {
            const code = ev.code;
            const reason = ev.reason ? String(ev.reason) : '';
            // calls in flight may or may not have run: reject them, the app decides
            for (const id of [...this.pending.keys()]) {
                if (!this.queued.some((q) => q.id === id)) {
                    this.#settle(id, null, new DurableError('CLOSED', `the socket closed (${code}) before the reply`));
                }
            }
            // 4000-4999: refused by the object; no point in trying again
            const willReconnect = this.options.reconnect && !this.closedByUser && !(code >= 4000 && code <= 4999);
            this.state = willReconnect ? 'reconnecting' : 'closed';
            if (!willReconnect) this.#failAll(new DurableError('CLOSED', `the socket closed (${code})`));
            this.#emit('close', { code, reason, willReconnect });
            if (willReconnect) this.#scheduleReconnect();
        };
    }

    #scheduleReconnect() {
        const { minDelay, maxDelay, jitter } = this.options;
        const base = Math.min(maxDelay, minDelay * 2 ** this.attempt);
        const delay = base * (1 - jitter + Math.random() * jitter * 2);
        this.attempt += 1;
        this.retryTimer = setTimeout(() => { if (!this.closedByUser) this.#open(); }, delay);
    }
}

/** Connect to one object: returns its handle at once; see DurableSocket. */
export function connect(url, options = {}) {
    return new DurableSocket(url, options);
}
