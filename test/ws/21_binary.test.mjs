// Binary frames both ways: a client's binary message reaches $message as {"binary": base64},
// durable.socket_send(bigint, bytea) and durable.broadcast(bytea) arrive as a {"type":"binary",
// "seq":N} frame followed by a binary frame of exactly those bytes; binary events are retained,
// replayed and read by durable.events() as {"binary": base64}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { connect, uid, sql, lit, sleep, waitFor } from './helpers.mjs';

test('binary echo: random payloads of 0 B to 1 MB come back byte for byte', async () => {
    const id = uid('echo');
    const c = await connect('it42_stream', id);
    try {
        const sizes = [0, 1, 2, 125, 126, 127, 65535, 65536, 65537, 300000, 1024 * 1024];
        const sent = sizes.map((n) => crypto.randomBytes(n));
        for (const b of sent) c.ws.send(b, { binary: true });
        await waitFor(() => c.events.length === sizes.length, 30000,
            `all ${sizes.length} echoes (have ${c.events.length})`);
        await sleep(200);
        assert.equal(c.strayBinary, undefined, 'every binary frame was announced by its header, and every header by its frame');
        for (const [i, e] of c.events.entries()) {
            assert.ok(e.bin, `echo ${i} is binary`);
            assert.equal(e.bin.length, sizes[i], `echo ${i}: ${sizes[i]} bytes`);
            assert.ok(e.bin.equals(sent[i]), `echo ${i}: the same bytes`);
        }
        const s = c.events.map((e) => e.seq);
        assert.deepEqual(s, s.map((_, i) => s[0] + i), 'consecutive seq numbers');
    } finally {
        await c.close();
    }
});

test('binary broadcast: every socket gets the bytes, with tags; retained, replayed and read as base64', async () => {
    const id = uid('bcast');
    const a = await connect('it42_stream', id, { query: { tags: 'red' } });
    const b = await connect('it42_stream', id);
    try {
        const all = crypto.randomBytes(1000);
        const redOnly = Buffer.from([0, 1, 2, 255]);
        await a.result('emit_bytes', { b64: all.toString('base64') });
        await a.result('emit_bytes', { b64: redOnly.toString('base64'), tag: 'red' });
        await a.result('emit', { from: 1, count: 1 });
        await waitFor(() => a.events.length === 3 && b.events.length === 2, 5000, 'the events');
        assert.ok(a.events[0].bin.equals(all) && b.events[0].bin.equals(all), 'both got the untagged bytes');
        assert.ok(a.events[1].bin.equals(redOnly), 'red got the red bytes');
        assert.deepEqual(b.events.map((e) => e.seq), [1, 3], 'b: not the red one');
        assert.deepEqual(a.events[2].data, { n: 1 }, 'a JSON event after binary ones');
        const rows = JSON.parse(sql(`SELECT jsonb_agg(data ORDER BY seq) FROM durable.events('it42_stream', ${lit(id)})`));
        assert.deepEqual(rows, [{ binary: all.toString('base64') }, { binary: redOnly.toString('base64') }, { n: 1 }]);
    } finally {
        await a.close();
        await b.close();
    }
    const r = await connect('it42_stream', id, { query: { since: 0, tags: 'red' } });
    try {
        await waitFor(() => r.events.length === 3, 5000, 'the replay');
        assert.deepEqual(r.events.map((e) => e.seq), [1, 2, 3]);
        assert.ok(r.events[1].bin.equals(Buffer.from([0, 1, 2, 255])), 'binary events are replayed as bytes');
    } finally {
        await r.close();
    }
});

test('a binary frame over durable.max_message_bytes closes the socket with 1009, like text', async () => {
    const c = await connect('it42_stream', uid('big'));
    c.ws.send(crypto.randomBytes(1024 * 1024 + 1), { binary: true });
    const closed = await c.waitClose(10000);
    assert.equal(closed.code, 1009);
});
