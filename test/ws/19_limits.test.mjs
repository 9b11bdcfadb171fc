// The gateway's memory is bounded by settings, and a client over a bound is slowed down or closed
// alone: the message area share of one client (durable.client_area_bytes), the messages being
// received over all sockets (durable.max_receive_bytes); slow consumers are judged over time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, waitFor, metrics, setSetting, sleep, RawSocket, wsFrame, objectUrl } from './helpers.mjs';

test('client share of the message area: a client over it waits, nothing is refused', async () => {
    const id = uid('share');
    let c;
    let busy;
    try {
        await setSetting('durable.max_message_bytes', '64kB');
        await setSetting('durable.client_area_bytes', '64kB');    // at least max_message_bytes + 64kB is used
        c = await connect('it42_room', id);
        busy = await connect('it42_room', id);
        const m0 = await metrics();
        const slept = busy.call('sleep', { seconds: 1 }, { timeout: 30000 });
        await sleep(50);
        const pad = 'y'.repeat(30 * 1024);
        const answers = [...Array(20).keys()].map((i) => c.call('echo', { i, pad }, { timeout: 30000 }));
        let peak = 0;
        for (let i = 0; i < 8; i++) {
            peak = Math.max(peak, (await metrics()).durable_message_area_client_bytes);
            await sleep(100);
        }
        const results = await Promise.all(answers);
        assert.deepEqual(results.map((r) => r.type), Array(20).fill('reply'), 'every call ran');
        assert.deepEqual(results.map((r) => r.result.i), [...Array(20).keys()], 'in order');
        await slept;
        const m1 = await metrics();
        assert.ok(m1.durable_calls_waited_total > m0.durable_calls_waited_total, 'the client had to wait');
        assert.ok(peak <= 2 * 64 * 1024 + 4096, `the client's bytes in the area stayed within its share (peak ${peak})`);
        assert.equal(m1.durable_calls_refused_total, m0.durable_calls_refused_total);
    } finally {
        await closeAll([c, busy]);
        await setSetting('durable.max_message_bytes', null, 0);
        await setSetting('durable.client_area_bytes', null);
    }
});

test('messages being received are bounded by durable.max_receive_bytes over all sockets (1013)', async () => {
    const raws = [];
    let ok;
    try {
        await setSetting('durable.max_receive_bytes', '1MB');
        // four sockets each start a 300 kB message and do not finish it
        for (let i = 0; i < 4; i++) {
            const s = await RawSocket.open(objectUrl('it42_room', uid('partial'), { name: 'p' }));
            s.send(wsFrame(1, `"${'z'.repeat(300 * 1024)}`, { fin: false }));
            raws.push(s);
            await sleep(100);
        }
        const codes = await Promise.all(raws.map((s) => s.closeFrame(2000).then((f) => f.code, () => null)));
        const refused = codes.filter((x) => x === 1013).length;
        assert.ok(refused >= 1 && refused <= 3, `some of the four were closed with 1013 (${codes})`);
        assert.deepEqual(codes.filter((x) => x !== null && x !== 1013), [], 'no other close');
        // the others are unaffected, and memory comes back when the partial messages go
        ok = await connect('it42_room', uid('partial-ok'));
        assert.equal((await ok.call('echo', { fine: true })).type, 'reply');
        raws.forEach((s) => s.destroy());
        await sleep(300);
        const s = await RawSocket.open(objectUrl('it42_room', uid('partial-again'), { name: 'p' }));
        raws.push(s);
        s.send(wsFrame(1, JSON.stringify({ type: 'call', id: 1, method: 'echo', args: { pad: 'q'.repeat(300 * 1024) } })));
        const reply = await s.next((f) => f.opcode === 1 && f.payload.includes('"id":1'), 10000);
        assert.match(reply.payload.toString().slice(0, 30), /"type":"reply"/);
    } finally {
        raws.forEach((s) => s.destroy());
        await closeAll([ok]);
        await setSetting('durable.max_receive_bytes', null);
    }
});

test('slow consumers are judged over time: a reader survives a burst larger than socket_buffer_bytes', async () => {
    const id = uid('burst');
    let c;
    try {
        await setSetting('durable.socket_buffer_bytes', '256kB');
        c = await connect('it42_room', id);
        // one call broadcasts 20 x 50 kB = 1 MB at once; the client reads all along
        const r = await c.call('bcast_big', { count: 20, bytes: 50 * 1024 }, { timeout: 30000 });
        assert.equal(r.type, 'reply');
        await waitFor(() => c.events.length >= 20, 10000, 'the 20 events');
        assert.equal(c.closed, null, 'not closed as a slow consumer');
        assert.equal((await c.call('echo', { still: 'open' })).type, 'reply');
    } finally {
        await closeAll([c]);
        await setSetting('durable.socket_buffer_bytes', null);
    }
});
