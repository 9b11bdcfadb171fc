// The frame and socket metrics of GET /metrics follow the traffic exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, metrics, waitFor } from './helpers.mjs';

test('metrics: frames/bytes in/out count the traffic, sockets_open follows the sockets', async () => {
    const id = uid('metrics');
    const clients = [];
    try {
        const m0 = await metrics();
        for (const name of ['durable_frames_in_total', 'durable_frames_out_total', 'durable_bytes_in_total',
            'durable_bytes_out_total', 'durable_sockets_open', 'durable_slow_consumer_closes_total']) {
            assert.equal(typeof m0[name], 'number', `${name} is exported`);
        }
        // the earlier tests of this run sent frames both ways
        assert.ok(m0.durable_frames_in_total > 0 && m0.durable_frames_out_total > 0);
        assert.ok(m0.durable_bytes_in_total >= m0.durable_frames_in_total);

        clients.push(await connect('it42_room', id));
        clients.push(await connect('it42_room', id));
        await waitFor(async () => (await metrics()).durable_sockets_open === m0.durable_sockets_open + 2,
            10000, 'durable_sockets_open + 2');
        const m1 = await metrics();

        // 5 call frames of known size from one client; 5 replies to it; 1 broadcast to both
        const [a, b] = clients;
        let bytesIn = 0;
        let bytesOut = 0;
        for (let i = 0; i < 5; i++) {
            const frame = JSON.stringify({ type: 'call', id: i, method: 'echo', args: { i, pad: 'é'.repeat(i * 100) } });
            bytesIn += Buffer.byteLength(frame);
            const from = a.messages.length;
            a.send(frame);
            const r = await a.next((m) => m.json?.id === i, 10000, from);
            bytesOut += Buffer.byteLength(r.text);
        }
        const frame = JSON.stringify({ type: 'call', id: 'b', method: 'bcast', args: { msg: { hello: 'all' } } });
        bytesIn += Buffer.byteLength(frame);
        b.send(frame);
        const ra = await a.next((m) => m.json?.data?.hello === 'all');
        const rb = await b.next((m) => m.json?.data?.hello === 'all');
        const replyB = await b.next((m) => m.json?.id === 'b');
        bytesOut += Buffer.byteLength(ra.text) + Buffer.byteLength(rb.text) + Buffer.byteLength(replyB.text);

        const m2 = await metrics();
        assert.equal(m2.durable_frames_in_total - m1.durable_frames_in_total, 6, 'frames in: 6 call frames');
        assert.equal(m2.durable_bytes_in_total - m1.durable_bytes_in_total, bytesIn, 'bytes in: their payload');
        assert.equal(m2.durable_frames_out_total - m1.durable_frames_out_total, 8, 'frames out: 6 replies + 2 events');
        assert.equal(m2.durable_bytes_out_total - m1.durable_bytes_out_total, bytesOut, 'bytes out: their payload');
        assert.equal(m2.durable_sockets_open, m1.durable_sockets_open);

        await closeAll(clients);
        await waitFor(async () => (await metrics()).durable_sockets_open === m0.durable_sockets_open,
            10000, 'durable_sockets_open back where it was');
        const m3 = await metrics();
        for (const name of ['durable_frames_in_total', 'durable_frames_out_total', 'durable_bytes_in_total', 'durable_bytes_out_total']) {
            assert.ok(m3[name] >= m2[name], `${name} never goes down`);
        }
    } finally {
        await closeAll(clients);
    }
});
