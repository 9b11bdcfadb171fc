// Backpressure, not refusal: a client faster than its object is slowed down (the gateway stops
// reading it until the host's queue has room), so floods complete with every call run and every
// event delivered, and many sockets opened at once are all accepted ($connect waits its turn).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, waitFor, metrics } from './helpers.mjs';

const ROOM = 100;

// n sockets of one object, opened at once
async function room(id, n) {
    return Promise.all([...Array(n).keys()].map((i) => connect('it42_room', id, { query: { name: `r${i}` },
        timeout: 60000 })));
}

// every client has the events n of each sender in 1..count (from.n), once each, in order
function assertAllEvents(clients, senders, count) {
    for (const c of clients) {
        const says = c.events.filter((e) => e.data.from !== undefined);
        assert.equal(says.length, senders * count, `a socket got ${says.length} of ${senders * count} events`);
        const last = {};
        for (const e of says) {
            assert.equal(e.data.n, (last[e.data.from] ?? 0) + 1, 'in order, none twice');
            last[e.data.from] = e.data.n;
        }
    }
}

test('backpressure: 1,000 call frames sent at once to a 100-socket room all run and reach everyone', async () => {
    const id = uid('flood');
    const m0 = await metrics();
    const clients = await room(id, ROOM);
    try {
        const sender = clients[0];
        const from = sender.messages.length;
        // the object is busy for a moment: the frames pile up behind this call
        const slept = clients[1].call('sleep', { seconds: 0.5 }, { timeout: 60000 });
        await new Promise((r) => setTimeout(r, 50));
        for (let n = 1; n <= 1000; n++) sender.ws.send(JSON.stringify({ type: 'call', id: n, method: 'say', args: { from: 's', n } }));
        await waitFor(() => sender.messages.slice(from).filter((m) => m.json?.type === 'reply' || m.json?.type === 'error').length === 1000,
            60000, '1,000 answers');
        const errors = sender.messages.filter((m) => m.json?.type === 'error');
        assert.deepEqual(errors.map((e) => e.json.error.code), [], 'no call was refused');
        await waitFor(() => clients.every((c) => c.events.length >= 1000), 60000,
            `every socket gets 1,000 events (least: ${Math.min(...clients.map((c) => c.events.length))})`);
        assertAllEvents(clients, 1, 1000);
        assert.equal((await slept).type, 'reply');
        assert.ok(clients.every((c) => c.closed === null), 'nobody was closed');
        const m1 = await metrics();
        assert.ok(m1.durable_calls_waited_total > m0.durable_calls_waited_total,
            'the flood had to wait for room (so the test saw backpressure)');
        assert.equal(m1.durable_calls_refused_total, m0.durable_calls_refused_total);
    } finally {
        await closeAll(clients);
    }
});

test('backpressure: 100 clients sending 10 call frames each to their room all run and reach everyone', async () => {
    const id = uid('flood100');
    const clients = await room(id, ROOM);
    const sleeper = await connect('it42_room', id, { query: { name: 'sleeper' } });
    try {
        // the object is busy for a moment: the frames pile up behind this call
        const slept = sleeper.call('sleep', { seconds: 0.5 }, { timeout: 60000 });
        await new Promise((r) => setTimeout(r, 50));
        clients.forEach((c, k) => {
            for (let n = 1; n <= 10; n++) c.ws.send(JSON.stringify({ type: 'call', id: n, method: 'say', args: { from: k, n } }));
        });
        await waitFor(() => clients.every((c) => c.messages.filter((m) => m.json?.type === 'reply' || m.json?.type === 'error').length === 10),
            60000, 'ten answers for every client');
        const errors = clients.flatMap((c) => c.messages).filter((m) => m.json?.type === 'error');
        assert.deepEqual(errors.map((e) => e.json.error.code), [], 'no call was refused');
        await waitFor(() => clients.every((c) => c.events.length >= 1000), 60000, 'every socket gets 1,000 events');
        assertAllEvents(clients, ROOM, 10);
        assert.equal((await slept).type, 'reply');
    } finally {
        await closeAll([...clients, sleeper]);
    }
});

test('backpressure: 1,500 sockets opened at once on one object are all accepted', async () => {
    const id = uid('burst');
    let clients = [];
    try {
        clients = await room(id, 1500);
        // every one of them answers a call: $connect accepted it
        const who = await Promise.all(clients.map((c) => c.call('whoami', {}, { timeout: 60000 })));
        assert.equal(who.filter((r) => r.type === 'reply').length, 1500);
        assert.equal(clients.filter((c) => c.closed).length, 0, 'none closed (no 1013)');
    } finally {
        await closeAll(clients);
    }
});
