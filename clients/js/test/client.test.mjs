// Tests of clients/js/durable.js against a real cluster (run by test/integration/50_js_client.sh):
// calls, errors, events, reconnects, resume with ?since=, gaps, binary frames both ways, and the
// permanent errors (404, 403, $connect refusals) that stop the handle instead of retrying.
// Env: PGHOST, PGPORT, PGDATA (psql, the gateway's pid), DURABLE_PORT (gateway), TEST_ROOT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, objectUrl, DurableError } from '../durable.js';
import { WebSocket, sql, sleep, waitFor, restartGateway } from './helpers.mjs';

const base = `ws://127.0.0.1:${process.env.DURABLE_PORT}`;
const open = (id, opts = {}, cls = 'it50') => connect(objectUrl(base, cls, id), { WebSocket, ...opts });

// a WebSocket class that counts the sockets the handle opens (attempts)
function countingWebSocket() {
    const C = class extends WebSocket {
        constructor(...args) { super(...args); C.urls.push(args[0]); }
    };
    C.urls = [];
    return C;
}

// SQL that runs a method of object (cls, id) and returns its result
const dcall = (cls, id, method, args = {}) =>
    sql(`SELECT durable.call('${cls}', '${id}', '${method}', '${JSON.stringify(args).replace(/'/g, "''")}')`);

before(async () => {
    sql(`CREATE FUNCTION it50(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    CASE method
    WHEN '$connect' THEN
        IF args->'query'->>'token' = 'bad' THEN
            RETURN jsonb_build_object('accept', false, 'code', 4401, 'reason', 'bad token');
        END IF;
        RETURN jsonb_build_object('accept', true, 'attachment', args->'query');
    WHEN '$message' THEN
        -- a binary frame comes back to every socket as bytes, a text one as JSON
        IF args ? 'binary' THEN PERFORM durable.broadcast(decode(args->>'binary', 'base64'));
        ELSE PERFORM durable.broadcast(jsonb_build_object('echo', args->'data'));
        END IF;
        RETURN NULL;
    WHEN 'echo' THEN RETURN args;
    WHEN 'who' THEN RETURN (SELECT attachment FROM durable.sockets() WHERE socket = durable.socket());
    WHEN 'shout' THEN PERFORM durable.broadcast(args); RETURN 'true';
    WHEN 'bytes' THEN PERFORM durable.broadcast(decode(args->>'b64', 'base64')); RETURN 'true';
    WHEN 'kick' THEN PERFORM durable.socket_close(durable.socket(), 4409, 'kicked'); RETURN 'true';
    WHEN 'fail' THEN RAISE EXCEPTION 'nope' USING ERRCODE = '22023';
    WHEN 'slow' THEN PERFORM pg_sleep((args->>'s')::float8); RETURN 'true';
    WHEN 'inc' THEN
        PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::int, 0) + 1));
        RETURN durable.get('n');
    ELSE RETURN NULL;
    END CASE;
END $$`);
    sql(`SELECT durable.define_class('it50', 'it50', '{"websocket": true, "retain": {"events": 1000}}')`);
    sql(`SELECT durable.define_class('it50_short', 'it50', '{"websocket": true, "retain": {"events": 3}}')`);
    sql(`SELECT durable.define_class('it50_http', 'it50', '{"http": true}')`);
    await sleep(1500);  // host 0 publishes the classes to the gateway
});

after(() => {
    for (const c of ['it50', 'it50_short', 'it50_http']) sql(`SELECT durable.drop_class('${c}', true)`);
    sql('DROP FUNCTION it50(text, text, jsonb)');
});

test('call resolves with the result; params reach $connect', async () => {
    const s = open('a', { params: { name: 'ada lovelace', n: 3 } });
    assert.deepEqual(await s.call('echo', { x: [1, 'two'] }), { x: [1, 'two'] });
    assert.deepEqual(await s.call('who'), { name: 'ada lovelace', n: '3' });
    s.close();
});

test('an error frame rejects the call with the SQLSTATE and message', async () => {
    const s = open('b');
    await assert.rejects(s.call('fail'), (e) => e instanceof DurableError && e.code === '22023' && e.message === 'nope');
    assert.equal(await s.call('echo', 1), 1);   // the socket stays usable
    s.close();
});

test('events arrive with increasing seq', async () => {
    const a = open('room');
    const b = open('room');
    await Promise.all([a.ready(), b.ready()]);
    const seen = [];
    b.on('event', (data, seq) => seen.push([data.n, seq]));
    for (let i = 1; i <= 5; i++) await a.call('shout', { n: i });
    assert.ok(await waitFor(() => seen.length === 5));
    assert.deepEqual(seen.map((x) => x[0]), [1, 2, 3, 4, 5]);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i][1] > seen[i - 1][1]);
    assert.equal(b.lastSeq, seen[4][1]);
    a.close(); b.close();
});

test('a call timeout rejects with TIMEOUT', async () => {
    const s = open('slow');
    await assert.rejects(s.call('slow', { s: 1.5 }, { timeout: 200 }), (e) => e.code === 'TIMEOUT');
    s.close();
});

test('a $connect refusal (4xxx) rejects ready() and queued calls with its code and reason, no retry', async () => {
    const Ws = countingWebSocket();
    const s = open('c', { params: { token: 'bad' }, WebSocket: Ws, minDelay: 20 });
    const closed = new Promise((r) => s.on('close', r));
    const queued = s.call('echo', 1);
    const refusal = (e) => e instanceof DurableError && e.code === '4401' && e.message === 'bad token' && e.closeCode === 4401;
    await assert.rejects(s.ready(), refusal);
    await assert.rejects(queued, refusal);
    const info = await closed;
    assert.deepEqual([info.code, info.reason, info.willReconnect], [4401, 'bad token', false]);
    assert.ok(refusal(info.error));
    await assert.rejects(s.call('echo', 2), refusal, 'a later call gets the same error');
    await assert.rejects(s.ready(), refusal, 'a later ready() too');
    assert.equal(s.state, 'closed');
    await sleep(300);
    assert.equal(Ws.urls.length, 1, 'one attempt only');
});

test('an unknown class (upgrade 404) rejects ready() and calls with 42704, no retry', async () => {
    const Ws = countingWebSocket();
    const s = open('x', { WebSocket: Ws, minDelay: 20 }, 'it50_no_such_class');
    const queued = s.call('echo', 1);
    const unknown = (e) => e instanceof DurableError && e.code === '42704' && e.status === 404 && /unknown class/.test(e.message);
    await assert.rejects(s.ready(), unknown);
    await assert.rejects(queued, unknown);
    assert.throws(() => s.send({ a: 1 }), unknown);
    await sleep(300);
    assert.equal(Ws.urls.length, 1, 'one attempt only');
    assert.equal(s.state, 'closed');
});

test('a class without websockets (upgrade 403) rejects ready() with 42501, no retry', async () => {
    const Ws = countingWebSocket();
    const s = open('x', { WebSocket: Ws, minDelay: 20 }, 'it50_http');
    await assert.rejects(s.ready(), (e) => e.code === '42501' && e.status === 403 && /WebSockets/.test(e.message));
    await sleep(300);
    assert.equal(Ws.urls.length, 1, 'one attempt only');
});

test('an upgrade answered 400 (no usable subprotocol) stops the handle with the gateway\'s code', async () => {
    const Ws = countingWebSocket();
    const s = open('p', { WebSocket: Ws, minDelay: 20, protocols: ['not-durable'] });
    await assert.rejects(s.ready(), (e) => e.code === '08P01' && e.status === 400);
    await sleep(300);
    assert.equal(Ws.urls.length, 1, 'one attempt only');
    // with the gateway's own subprotocol in the list it opens
    const ok = open('p', { protocols: ['not-durable', 'durable'] });
    assert.equal(await ok.call('echo', 'in'), 'in');
    ok.close();
});

test('a close by the object (socket_close 4409) stops the handle with that code', async () => {
    const s = open('k');
    await s.ready();
    const closed = new Promise((r) => s.on('close', r));
    const kick = s.call('kick');   // in flight when the object closes the socket
    const info = await closed;
    assert.deepEqual([info.code, info.willReconnect, info.error.code, info.error.message], [4409, false, '4409', 'kicked']);
    await assert.rejects(kick, (e) => e.code === '4409' && e.message === 'kicked');
    await assert.rejects(s.call('echo', 1), (e) => e.code === '4409');
});

test('503 (too many sockets) is transient: the handle retries and opens when there is room', async () => {
    const Ws = countingWebSocket();
    sql('ALTER SYSTEM SET durable.max_sockets = 0');   // every upgrade: 503 too many sockets
    sql('SELECT pg_reload_conf()');
    try {
        await sleep(500);
        const s = open('busy', { WebSocket: Ws, minDelay: 50, maxDelay: 200 });
        await assert.rejects(s.ready({ timeout: 1000 }), (e) => e.code === 'TIMEOUT', 'not open while full');
        assert.ok(Ws.urls.length >= 2, `it kept trying (${Ws.urls.length} attempts)`);
        assert.notEqual(s.state, 'closed');
        sql('ALTER SYSTEM RESET durable.max_sockets');
        sql('SELECT pg_reload_conf()');
        await s.ready({ timeout: 10000 });
        assert.equal(await s.call('echo', 'in'), 'in');
        s.close();
    } finally {
        sql('ALTER SYSTEM RESET durable.max_sockets');
        sql('SELECT pg_reload_conf()');
    }
});

test('ready() settles with TIMEOUT while nothing listens, and close() stops the retries', async () => {
    const Ws = countingWebSocket();
    const s = connect('ws://127.0.0.1:1/objects/it50/nobody', { WebSocket: Ws, minDelay: 20, maxDelay: 50 });
    const queued = s.call('echo', 1, { timeout: 0 });
    await assert.rejects(s.ready({ timeout: 400 }), (e) => e.code === 'TIMEOUT');
    assert.equal(s.state, 'reconnecting');
    assert.ok(Ws.urls.length >= 2, 'network errors are retried');
    s.close();
    await assert.rejects(queued, (e) => e.code === 'CLOSED');
    const n = Ws.urls.length;
    await sleep(200);
    assert.equal(Ws.urls.length, n, 'no attempt after close()');
});

test('after the gateway restarts the handle resumes: every event committed meanwhile, in order, once', async () => {
    const Ws = countingWebSocket();
    const s = open('r', { WebSocket: Ws, minDelay: 100, maxDelay: 500 });
    const seen = [];
    s.on('event', (data, seq) => seen.push({ n: data.n, seq }));
    let gaps = 0;
    s.on('gap', () => { gaps += 1; });
    await s.ready();
    assert.equal(await s.call('inc'), 1);
    await s.call('shout', { n: 0 });
    assert.ok(await waitFor(() => seen.length === 1));
    let hooks = 0;
    s.onReconnect(async (sock) => { hooks += 1; await sock.call('echo', 'resync'); });
    const closed = new Promise((r) => s.on('close', r));
    await restartGateway(async () => {
        await closed;
        // while the gateway is down: events committed by SQL calls
        for (let n = 1; n <= 5; n++) dcall('it50', 'r', 'shout', { n });
        assert.notEqual(s.state, 'open', 'the events were committed while the handle was away');
    });
    const info = await closed;
    assert.equal(info.willReconnect, true);
    const queued = s.call('inc', {}, { timeout: 15000 });   // made while disconnected: waits for the socket
    assert.equal(await queued, 2);
    for (let n = 6; n <= 8; n++) await s.call('shout', { n });
    assert.ok(await waitFor(() => seen.length === 9), `got ${JSON.stringify(seen)}`);
    assert.deepEqual(seen.map((e) => e.n), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for (let i = 1; i < seen.length; i++) assert.equal(seen[i].seq, seen[i - 1].seq + 1, 'contiguous seq');
    assert.equal(gaps, 0);
    assert.ok(await waitFor(() => hooks === 1));
    assert.match(Ws.urls.at(-1), new RegExp(`[?&]since=${seen[0].seq}$`), 'reconnected with since=lastSeq');
    assert.doesNotMatch(Ws.urls[0], /since=/, 'the first connect has no since');
    s.close();
});

test('dropped at random while a producer runs, the handle still gets every event once, in order', async () => {
    const producer = open('load');
    const s = open('load', { minDelay: 5, maxDelay: 40 });
    const seen = [];
    let gaps = 0;
    s.on('event', (data, seq) => seen.push({ n: data.n, seq }));
    s.on('gap', () => { gaps += 1; });
    await Promise.all([producer.ready(), s.ready()]);
    // the producer goes on until the handle was dropped 8 times (and made 300 events at least)
    let dropping = true;
    const produce = (async () => {
        let n = 0;
        while (dropping || n < 300) await producer.call('shout', { n: ++n });
        return n;
    })();
    for (let drops = 0; drops < 8;) {
        await sleep(20 + Math.random() * 80);
        if (s.state === 'open') { s.ws.terminate(); drops += 1; }   // the network goes away
    }
    dropping = false;
    const total = await produce;
    assert.ok(await waitFor(() => seen.length >= total, 15000), `got ${seen.length} of ${total}`);
    await sleep(200);
    assert.deepEqual(seen.map((e) => e.n), Array.from({ length: total }, (_, i) => i + 1), 'each event once, in order');
    for (let i = 1; i < seen.length; i++) assert.equal(seen[i].seq, seen[i - 1].seq + 1);
    assert.equal(gaps, 0);
    producer.close(); s.close();
});

test('a resume past what the object retains raises gap, then delivers what is left', async () => {
    const s = open('g', { minDelay: 50, maxDelay: 200 }, 'it50_short');
    const seen = [];
    const gaps = [];
    s.on('event', (data, seq) => seen.push({ n: data.n, seq }));
    s.on('gap', (g) => gaps.push(g));
    await s.ready();
    await s.call('shout', { n: 0 });
    assert.ok(await waitFor(() => seen.length === 1));
    const first = seen[0].seq;
    const closed = new Promise((r) => s.on('close', r));
    await restartGateway(async () => {
        await closed;
        for (let n = 1; n <= 6; n++) dcall('it50_short', 'g', 'shout', { n });   // 3 are kept
        assert.notEqual(s.state, 'open');
    });
    assert.ok(await waitFor(() => gaps.length === 1 && seen.length === 4), `gaps ${JSON.stringify(gaps)} events ${JSON.stringify(seen)}`);
    assert.deepEqual(gaps[0], { oldest: first + 4, since: first });
    assert.deepEqual(seen.map((e) => e.n), [0, 4, 5, 6]);
    s.close();
});

test('options.since resumes on the first connect; events at or below lastSeq are dropped', async () => {
    const a = open('s');
    await a.ready();
    for (let n = 1; n <= 4; n++) await a.call('shout', { n });
    const rows = sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM durable.events('it50', 's')").split(',').map(Number);
    assert.equal(rows.length, 4);
    const b = open('s', { since: rows[1] });
    const seen = [];
    b.on('event', (data, seq) => seen.push([data.n, seq]));
    await b.ready();
    assert.ok(await waitFor(() => seen.length === 2));
    assert.deepEqual(seen, [[3, rows[2]], [4, rows[3]]]);
    // a seq the handle has passed is not delivered again
    b.lastSeq = rows[3] + 1;
    await a.call('shout', { n: 5 });   // seq rows[3] + 1
    await a.call('shout', { n: 6 });
    assert.ok(await waitFor(() => seen.length === 3));
    await sleep(100);
    assert.deepEqual(seen.map((x) => x[0]), [3, 4, 6]);
    a.close(); b.close();
});

test('a since beyond the stream (a restored database) raises gap and delivers the events from oldest', async () => {
    dcall('it50', 'back', 'shout', { n: 1 });
    dcall('it50', 'back', 'shout', { n: 2 });
    const rows = sql("SELECT string_agg(seq::text, ',' ORDER BY seq) FROM durable.events('it50', 'back')").split(',').map(Number);
    const s = open('back', { since: 1e12 });
    const seen = [];
    const gaps = [];
    s.on('event', (data, seq) => seen.push([data.n, seq]));
    s.on('gap', (g) => gaps.push(g));
    await s.ready();
    assert.ok(await waitFor(() => seen.length === 2), `events ${JSON.stringify(seen)}`);
    assert.deepEqual(gaps, [{ oldest: rows[0], since: 1e12 }]);
    assert.deepEqual(seen, [[1, rows[0]], [2, rows[1]]]);
    assert.equal(s.lastSeq, rows[1]);
    s.close();
});

test('binary: typed arrays go as binary frames and come back as Uint8Array events with a seq', async () => {
    const s = open('bin', { callTimeout: 30000 });
    const got = [];
    s.on('event', (data, seq) => got.push({ data, seq }));
    await s.ready();
    const sizes = [0, 1, 125, 126, 65535, 65536, 300000];   // $message gets base64: < max_message_bytes
    const sent = [];
    for (const n of sizes) {
        // a view into a larger buffer: exactly its bytes go
        const big = randomBytes(n + 16);
        const view = new Uint8Array(big.buffer, big.byteOffset + 8, n);
        sent.push(Buffer.from(view));
        s.send(view);
    }
    s.send(new Uint8Array([1, 2, 3]).buffer);   // an ArrayBuffer
    sent.push(Buffer.from([1, 2, 3]));
    assert.ok(await waitFor(() => got.length === sent.length, 30000), `got ${got.length} of ${sent.length}`);
    for (let i = 0; i < sent.length; i++) {
        assert.ok(got[i].data instanceof Uint8Array, `event ${i} is bytes`);
        assert.equal(got[i].data.byteLength, sent[i].length, `event ${i}: ${sent[i].length} bytes`);
        assert.ok(Buffer.from(got[i].data).equals(sent[i]), `event ${i}: the same bytes`);
        if (i > 0) assert.equal(got[i].seq, got[i - 1].seq + 1);
    }
    // JSON and bytes on one stream: a text frame is echoed as JSON between them
    s.send({ hello: 'json' });
    await s.call('bytes', { b64: Buffer.from('hi').toString('base64') });
    assert.ok(await waitFor(() => got.length === sent.length + 2));
    assert.deepEqual(got.at(-2).data, { echo: { hello: 'json' } });
    assert.equal(Buffer.from(got.at(-1).data).toString(), 'hi');
    s.close();
});

test('binary events are replayed on resume like text ones', async () => {
    const s = open('binr', { minDelay: 100, maxDelay: 500 });
    const got = [];
    s.on('event', (data, seq) => got.push({ data, seq }));
    await s.ready();
    await s.call('shout', { n: 0 });
    assert.ok(await waitFor(() => got.length === 1));
    const payloads = [randomBytes(3), randomBytes(0), randomBytes(70000)];
    const closed = new Promise((r) => s.on('close', r));
    await restartGateway(async () => {
        await closed;
        for (const p of payloads) dcall('it50', 'binr', 'bytes', { b64: p.toString('base64') });
        assert.notEqual(s.state, 'open');
    });
    assert.ok(await waitFor(() => got.length === 4, 15000), `got ${got.length}`);
    for (let i = 0; i < payloads.length; i++) {
        assert.ok(Buffer.from(got[i + 1].data).equals(payloads[i]), `payload ${i}`);
        assert.equal(got[i + 1].seq, got[0].seq + i + 1);
    }
    s.close();
});

test('queue: false rejects calls while disconnected', async () => {
    const s = open('q', { queue: false });
    await assert.rejects(s.call('echo', 1), (e) => e.code === 'NOT_CONNECTED');
    await s.ready();
    assert.equal(await s.call('echo', 2), 2);
    s.close();
    await assert.rejects(s.call('echo', 3), (e) => e.code === 'NOT_CONNECTED');
    await assert.rejects(s.ready(), (e) => e.code === 'CLOSED');
});
