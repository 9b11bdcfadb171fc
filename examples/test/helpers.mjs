// Helpers of the example tests (examples/test/*.test.mjs, run by test/integration/60_examples.sh).
// Environment: TEST_ROOT (the test tree, for the ws package in test/ws), DURABLE_PORT (the
// gateway), PGHOST/PGPORT/PGDATABASE/PGUSER for psql, PGDATA (the gateway's pid).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect, objectUrl } from '../../clients/js/durable.js';

// a gateway restart with work done while it is down, as the client's own tests do it
export { restartGateway } from '../../clients/js/test/helpers.mjs';

const require = createRequire(`${process.env.TEST_ROOT}/test/ws/package.json`);
export const WebSocket = require('ws');
export const PORT = Number(process.env.DURABLE_PORT || 7432);
export const WS_BASE = `ws://127.0.0.1:${PORT}`;
export const HTTP_BASE = `http://127.0.0.1:${PORT}`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let counter = 0;
/** A unique object id for this run. */
export function uid(prefix) {
    return `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;
}

/** psql -X -At -c query: its output, trimmed; throws with psql's stderr. */
export function sql(query) {
    try {
        return execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1'], {
            input: query, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20,
        }).trim();
    } catch (e) {
        throw new Error(`psql failed: ${query.slice(0, 300)}\n${e.stderr || e.message}`);
    }
}

/** A SQL string literal. */
export const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

/** durable.call from SQL: the parsed result. */
export function dcall(cls, id, method, args = {}) {
    const out = sql(`SELECT durable.call(${lit(cls)}, ${lit(id)}, ${lit(method)}, ${lit(JSON.stringify(args))}::jsonb)`);
    return out === '' ? null : JSON.parse(out);
}

/** Poll pred (sync or async) until it is truthy; false after ms. */
export async function waitFor(pred, ms = 10000, every = 25) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await pred();
        if (v) return v;
        if (Date.now() > end) return false;
        await sleep(every);
    }
}

/** A durable.js handle to object (cls, id) through the ws package. */
export function open(cls, id, params = {}, options = {}) {
    return connect(objectUrl(WS_BASE, cls, id), { WebSocket, params, ...options });
}

/** POST /objects/cls/id/method with a JSON body: { status, body }. */
export async function post(cls, id, method, args) {
    const res = await fetch(`${HTTP_BASE}/objects/${encodeURIComponent(cls)}/${encodeURIComponent(id)}/${method}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args),
    });
    const text = await res.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: res.status, body };
}

/** A seeded random number generator (mulberry32), so failures can be replayed. */
export function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
