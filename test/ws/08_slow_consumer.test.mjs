// A client that stops reading is closed (1008) once durable.socket_buffer_bytes is queued for it;
// the other clients get every message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, setSetting, waitFor, metrics, socketsOf, storageGet } from './helpers.mjs';

test('slow consumer: a client that stops reading is closed with 1008, the others get everything', async () => {
    const id = uid('slow');
    const clients = [];
    const BYTES = 32 * 1024;      // half of durable.socket_buffer_bytes per message
    const MAX_CALLS = 768;        // 24 MB: more than the kernel buffers of a loopback connection
    let slow;
    try {
        await setSetting('durable.socket_buffer_bytes', '64kB');
        slow = await connect('it42_room', id, { query: { name: 'slow' } });
        clients.push(slow);
        const f1 = await connect('it42_room', id, { query: { name: 'f1' } });
        clients.push(f1);
        const f2 = await connect('it42_room', id, { query: { name: 'f2' } });
        clients.push(f2);
        const slowSocket = (await slow.result('whoami')).socket;
        const m0 = await metrics();
        // the slow client stops reading: the kernel buffers fill, then the gateway's queue for it.
        // The object broadcasts 32 kB messages, one call at a time, until the gateway gives up on
        // it (at least 2 MB)
        slow.ws._socket.pause();
        let calls = 0;
        let m1 = m0;
        while (calls < MAX_CALLS) {
            const r = await f1.call('bcast_big', { count: 1, bytes: BYTES }, { timeout: 20000 });
            assert.equal(r.type, 'reply', JSON.stringify(r).slice(0, 200));
            calls++;
            if (calls >= 64 && calls % 16 === 0) {
                m1 = await metrics();
                if (m1.durable_slow_consumer_closes_total > m0.durable_slow_consumer_closes_total) break;
            }
        }
        assert.equal(m1.durable_slow_consumer_closes_total, m0.durable_slow_consumer_closes_total + 1,
            `durable_slow_consumer_closes_total grew by one after ${calls} calls (${calls * BYTES} bytes)`);
        await waitFor(() => f1.events.length >= calls && f2.events.length >= calls, 20000,
            `the fast clients get all ${calls} (have ${f1.events.length}, ${f2.events.length})`);
        for (const c of [f1, f2]) {
            assert.equal(c.events.length, calls);
            assert.equal(c.closed, null, 'a fast client stays open');
            assert.ok(c.events.every((e, i) => e.data.pad.length === BYTES && e.data.i === 1));
            for (let j = 1; j < c.events.length; j++) assert.ok(c.events[j].seq > c.events[j - 1].seq);
        }
        // the slow client's socket is gone on the server: $close ran with 1008
        await waitFor(() => !socketsOf('it42_room', id).some((s) => s.socket === slowSocket), 10000,
            'the slow socket to leave durable.sockets_all');
        const closeArgs = await waitFor(() => storageGet('it42_room', id, `close:${slowSocket}`), 10000, '$close of the slow socket');
        assert.equal(closeArgs.code, 1008);
        // reading again, the client sees the close code 1008
        slow.ws._socket.resume();
        const closed = await slow.waitClose(10000);
        // 1008 when our Close got through; a client that read nothing at all may not get it before
        // the connection ends (GATEWAY_CLOSE_TIMEOUT later): then 1006
        assert.ok(closed.code === 1008 || closed.code === 1006,
            `the slow client is closed with 1008, or its connection ended (got ${closed.code} ${closed.reason})`);
        assert.ok(slow.events.length < calls, `the slow client did not get everything (${slow.events.length} of ${calls})`);
        // and the others still work
        assert.equal((await f2.call('echo', { still: 'here' })).type, 'reply');
    } finally {
        slow?.ws._socket.resume();
        await closeAll(clients);
        await setSetting('durable.socket_buffer_bytes', null, 200);
    }
});
