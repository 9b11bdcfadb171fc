// collab.js — the client side of the collaborative document (examples/collab_doc.sql):
// keeps a local copy of the text in step with the server by operational transformation.
// No DOM here: doc.html binds it to a textarea, the tests drive it from Node.
//
//   import { connect } from './durable.js';
//   import { CollabDoc } from './collab.js';
//   const client = CollabDoc.newClientId();
//   const socket = connect(`ws://${location.host}/objects/collab_doc/notes`, { params: { client, name: 'ada' } });
//   const doc = new CollabDoc(socket, { client });
//   doc.on('change', ({ text, op, remote }) => ...);
//   doc.insert(0, 'hi');                       // or doc.applyLocal(op) after editing the text yourself
//
// The protocol (Jupiter/ot.js style, one operation in flight):
// - every edit is an operation on the text at this.version; the first one goes to the server
//   at once ("edit" with base = this.version), later ones are composed into a buffer that goes
//   when the server acknowledges the one in flight;
// - the server answers with the version it gave the operation and tells the other sockets
//   ("op" events with their versions); the client applies the server's operations strictly in
//   version order, whatever order the reply and the events arrive in;
// - a remote operation is transformed against the operation in flight and the buffer (the
//   same transform() the server uses, the same tie rule: the smaller client id goes first at
//   one position) and then applied to the local text;
// - the text is loaded once ("get"); after a reconnect the socket resumes the event stream
//   (durable.js reconnects with ?since=), so the operations missed arrive as events, and the
//   operation in flight is sent again (the server applies an edit once per client and seq:
//   if it had committed, the answer says so); its own "op" event, replayed, also counts as
//   its acknowledgement;
// - only when the server no longer has the events missed (a "gap") does the client ask for
//   the operations since its version ("since"), and only when those are gone too does it
//   load the text again.

import { apply, transform, compose, transformIndex, insertOp, deleteOp } from './ot.js';

export class CollabDoc {
    /** A random client id: 12 characters of [0-9a-z]. */
    static newClientId() {
        const bytes = new Uint8Array(9);
        globalThis.crypto.getRandomValues(bytes);
        return Array.from(bytes, (b) => (b % 36).toString(36)).join('').slice(0, 12);
    }

    /**
     * socket: a handle from durable.js connect() to ws://.../objects/collab_doc/{doc} made with
     * params { client } (and optionally name); client: the same id.
     */
    constructor(socket, { client } = {}) {
        if (!client) throw new Error('CollabDoc needs the client id given to connect() as params.client');
        this.socket = socket;
        this.client = client;
        this.text = '';
        this.version = -1;          // -1 until the text is loaded ("get")
        this.inflight = null;       // { op, seq, sent }: sent to the server, not yet acknowledged
        this.buffer = null;         // local edits made since, composed into one operation
        this.seq = 0;
        this.arrived = new Map();   // version -> { ack } | { op, client }: waiting for their turn
        this.peers = new Map();     // socket id -> { client, name, color, pos }
        this.me = null;             // our own presence record (from the server)
        this.presenceSeq = 0;       // seq of the last "hello": older presence events are stale
        this.snapshots = 0;         // how many times the text was loaded: 1 unless a gap forced it
        this.listeners = new Map();
        this.beforeRemote = null;   // called before a remote operation is applied (flush the UI)
        this.readyPromise = new Promise((resolve) => { this.resolveReady = resolve; });
        socket.on('event', (data, seq) => this.#onEvent(data, seq));
        socket.on('gap', () => { if (this.version >= 0) this.#catchUp(); });
        // after a reconnect: the first load if the drop interrupted it, else the edit in flight
        socket.on('reconnect', () => { if (this.version < 0) this.#load(); else this.#sendInflight(); });
        this.#load();
    }

    /** Listen: 'change' ({ text, op, remote, reset }), 'peers' (Map), 'error' (Error), 'ready'. */
    on(name, fn) {
        if (!this.listeners.has(name)) this.listeners.set(name, new Set());
        this.listeners.get(name).add(fn);
        return () => this.listeners.get(name).delete(fn);
    }

    /** Resolves once the document's first state has arrived. */
    ready() { return this.readyPromise; }

    /** True when every local edit has been acknowledged by the server. */
    get synced() { return this.inflight === null && this.buffer === null; }

    /** Insert text at code point pos (also changes this.text). */
    insert(pos, text) { return this.applyLocal(insertOp(pos, text)); }

    /** Delete len code points at pos. */
    delete(pos, len) { return this.applyLocal(deleteOp(pos, len)); }

    /** A local edit: op applies to this.text; it is applied here and sent to the server. */
    applyLocal(op) {
        if (op.length === 0) return;
        if (this.version < 0) throw new Error('the document has not arrived yet (await doc.ready())');
        this.text = apply(this.text, op);
        for (const p of this.peers.values()) if (p.pos != null) p.pos = transformIndex(op, p.pos);
        if (this.inflight === null) {
            this.inflight = { op, seq: ++this.seq, sent: false };
            this.#sendInflight();
        } else {
            this.buffer = this.buffer === null ? op : compose(this.buffer, op);
        }
        this.#emit('change', { text: this.text, op, remote: false });
    }

    /** Tell the others where our cursor is (code point index); throttle it yourself. */
    cursor(pos) {
        if (this.socket.state === 'open') this.socket.send({ type: 'cursor', pos, version: this.version });
    }

    #emit(name, ...args) {
        for (const fn of this.listeners.get(name) || []) {
            try { fn(...args); } catch (e) { setTimeout(() => { throw e; }); }
        }
    }

    #sendInflight() {
        const f = this.inflight;
        if (f === null || f.sent || this.socket.state !== 'open') return;
        f.sent = true;
        this.socket.call('edit', { base: this.version, op: f.op, seq: f.seq }, { timeout: 0 }).then(
            (r) => { this.#arrive(r.version, { ack: f.seq }); },
            (e) => {
                if (this.inflight !== f) return;
                f.sent = false;
                // the socket dropped: the edit may or may not have committed; the catch-up
                // after the reconnect finds out.  Anything else: start over from the server.
                if (e.code !== 'CLOSED' && e.code !== 'NOT_CONNECTED') this.#hardReset(e);
            });
    }

    #arrive(version, item) {
        if (version > this.version) this.arrived.set(version, item);
        this.#drain();
    }

    // apply what arrived, strictly in version order
    #drain() {
        for (;;) {
            const item = this.arrived.get(this.version + 1);
            if (item === undefined) return;
            this.arrived.delete(this.version + 1);
            if (item.ack !== undefined) {
                if (this.inflight === null || this.inflight.seq !== item.ack) {
                    this.#hardReset(new Error(`unexpected acknowledgement of edit ${item.ack}`));
                    return;
                }
                this.version += 1;
                this.inflight = null;
                if (this.buffer !== null) {
                    this.inflight = { op: this.buffer, seq: ++this.seq, sent: false };
                    this.buffer = null;
                    this.#sendInflight();
                }
                if (this.synced) this.#emit('synced');
                continue;
            }
            if (this.beforeRemote) this.beforeRemote();
            let r = item.op;
            const mineFirst = this.client < item.client;
            if (this.inflight !== null) [this.inflight.op, r] = transform(this.inflight.op, r, mineFirst);
            if (this.buffer !== null) [this.buffer, r] = transform(this.buffer, r, mineFirst);
            this.text = apply(this.text, r);
            this.version += 1;
            for (const p of this.peers.values()) if (p.pos != null) p.pos = transformIndex(r, p.pos);
            this.#emit('change', { text: this.text, op: r, remote: true, client: item.client });
        }
    }

    // the text, the first time (the call waits for the socket)
    async #load() {
        try {
            const s = await this.socket.call('get', {}, { timeout: 0 });
            if (this.version >= 0) return;
            this.snapshots += 1;
            this.#takeState(s.text, s.version);
            this.#emit('ready');
            this.resolveReady();
        } catch (e) {
            if (e.code !== 'CLOSED') this.#emit('error', e);   // CLOSED: again after the reconnect
        }
    }

    // after a gap: fetch the operations we missed and find out what became of our edit in flight
    async #catchUp() {
        try {
            const r = await this.socket.call('since', { version: this.version });
            for (const o of r.ops) {
                const mine = o.client === this.client && this.inflight !== null && o.seq === this.inflight.seq;
                this.#arrive(o.version, mine ? { ack: o.seq } : { op: o.op, client: o.client });
            }
            this.#sendInflight();
        } catch (e) {
            if (e.code === 'CLOSED' || e.code === 'NOT_CONNECTED') return;   // next reconnect
            this.#hardReset(e);
        }
    }

    // start over from the server's text; local edits not yet acknowledged are dropped
    async #hardReset(why) {
        if (why) this.#emit('error', why);
        this.inflight = null;
        this.buffer = null;
        this.arrived.clear();
        try {
            const s = await this.socket.call('get');
            this.snapshots += 1;
            this.#takeState(s.text, s.version);
        } catch (e) {
            this.#emit('error', e);
        }
    }

    #takeState(text, version) {
        this.text = text;
        this.version = version;
        for (const v of [...this.arrived.keys()]) if (v <= version) this.arrived.delete(v);
        this.#emit('change', { text, op: null, remote: true, reset: true });
        this.#drain();
    }

    #onEvent(data, seq) {
        if (!data || typeof data !== 'object') return;
        switch (data.type) {
        case 'hello':          // right after every (re)connect: who we are, who is here
            this.me = data.you;
            this.presenceSeq = seq;
            this.peers = new Map((data.peers || []).map((p) => [p.socket, p]));
            this.#emit('peers', this.peers);
            break;
        case 'op': {
            // our own edit, replayed to the new socket after a drop: its acknowledgement
            const mine = data.client === this.client && this.inflight !== null && data.seq === this.inflight.seq;
            this.#arrive(data.version, mine ? { ack: data.seq } : { op: data.op, client: data.client });
            break;
        }
        case 'join':
        case 'cursor':
            if (seq < this.presenceSeq) break;
            if (this.me && data.socket === this.me.socket) break;
            this.peers.set(data.socket, { client: data.client, name: data.name, color: data.color,
                                          pos: data.pos ?? null, socket: data.socket });
            this.#emit('peers', this.peers);
            break;
        case 'leave':
            if (seq < this.presenceSeq) break;
            this.peers.delete(data.socket);
            this.#emit('peers', this.peers);
            break;
        default:
            break;
        }
    }
}
