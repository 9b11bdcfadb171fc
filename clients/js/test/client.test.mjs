// Tests of clients/js/durable.js against a real cluster (run by test/integration/50_js_client.sh).
// Env: PGHOST, PGPORT (psql), DURABLE_PORT (gateway), TEST_ROOT.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect, objectUrl, DurableError } from '../durable.js';

const require = createRequire(`${process.env.TEST_ROOT}/test/ws/package.json`);
const WebSocket = require('ws');
const base = `ws://127.0.0.1:${process.env.DURABLE_PORT}`;
const sql = (q) => execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', q], { encoding: 'utf8' }).trim();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred, ms = 10000) {
    const end = Date.now() + ms;
    while (Date.now() < end) { if (await pred()) return true; await sleep(50); }
    return false;
}
import { readFileSync } from 'node:fs';
// the gateway of this cluster: a child of its postmaster
const gatewayPid = () => {
    const postmaster = readFileSync(`${process.env.PGDATA}/postmaster.pid`, 'utf8').split('\n')[0];
    return execFileSync('pgrep', ['-P', postmaster, '-f', 'pg_durable_objects gateway'], { encoding: 'utf8' }).trim().split('\n')[0];
};
const open = (id, opts = {}) => connect(objectUrl(base, 'it50', id), { WebSocket, ...opts });

before(async () => {
    sql(`CREATE FUNCTION it50(id text, method text, args jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    CASE method
    WHEN '$connect' THEN
        IF args->'query'->>'token' = 'bad' THEN
            RETURN jsonb_build_object('accept', false, 'code', 4401, 'reason', 'bad token');
        END IF;
        RETURN jsonb_build_object('accept', true, 'attachment', args->'query');
    WHEN 'echo' THEN RETURN args;
    WHEN 'who' THEN RETURN (SELECT attachment FROM durable.sockets() WHERE socket = durable.socket());
    WHEN 'shout' THEN PERFORM durable.broadcast(args); RETURN 'true';
    WHEN 'fail' THEN RAISE EXCEPTION 'nope' USING ERRCODE = '22023';
    WHEN 'slow' THEN PERFORM pg_sleep((args->>'s')::float8); RETURN 'true';
    WHEN 'inc' THEN
        PERFORM durable.put('n', to_jsonb(coalesce(durable.get('n')::int, 0) + 1));
        RETURN durable.get('n');
    ELSE RETURN NULL;
    END CASE;
END $$`);
    sql(`SELECT durable.define_class('it50', 'it50', '{"websocket": true}')`);
    await sleep(1500);  // host 0 publishes the class to the gateway
});

after(() => { sql(`SELECT durable.drop_class('it50', true)`); sql('DROP FUNCTION it50(text, text, jsonb)'); });

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
    a.close(); b.close();
});

test('a call timeout rejects with TIMEOUT', async () => {
    const s = open('slow');
    await assert.rejects(s.call('slow', { s: 1.5 }, { timeout: 200 }), (e) => e.code === 'TIMEOUT');
    s.close();
});

test('a refusal (4xxx) closes without reconnecting and rejects calls', async () => {
    const s = open('c', { params: { token: 'bad' } });
    const closed = new Promise((r) => s.on('close', r));
    const pending = s.call('echo', 1);
    const info = await closed;
    assert.equal(info.code, 4401);
    assert.equal(info.reason, 'bad token');
    assert.equal(info.willReconnect, false);
    await assert.rejects(pending, (e) => e.code === 'CLOSED');
});

test('after the gateway restarts the client reconnects, runs onReconnect and sends queued calls', async () => {
    const s = open('r', { minDelay: 100, maxDelay: 500 });
    await s.ready();
    assert.equal(await s.call('inc'), 1);
    let hooks = 0;
    s.onReconnect(async (sock) => { hooks += 1; await sock.call('echo', 'resync'); });
    const closed = new Promise((r) => s.on('close', r));
    process.kill(Number(gatewayPid()), 'SIGTERM');
    const info = await closed;
    assert.equal(info.willReconnect, true);
    const queued = s.call('inc', {}, { timeout: 15000 });   // made while disconnected: waits for the socket
    assert.equal(await queued, 2);
    assert.ok(await waitFor(() => hooks === 1));
    s.close();
});

test('queue: false rejects calls while disconnected', async () => {
    const s = open('q', { queue: false });
    await assert.rejects(s.call('echo', 1), (e) => e.code === 'NOT_CONNECTED');
    await s.ready();
    assert.equal(await s.call('echo', 2), 2);
    s.close();
    await assert.rejects(s.call('echo', 3), (e) => e.code === 'NOT_CONNECTED');
});
