// G5 with a chat room: 20 clients x 10 concurrent "say" calls on one object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, waitFor } from './helpers.mjs';

test('G5 chat room: 20 clients x 10 says: everyone gets all 200 once, seq increasing, same order', async () => {
    const id = uid('chat');
    const N = 20;
    const M = 10;
    const clients = [];
    try {
        for (let i = 0; i < N; i++) clients.push(await connect('it42_room', id, { query: { name: `u${i}` } }));
        // every client sends its 10 calls without waiting, all clients at once
        const replies = [];
        for (let n = 0; n < M; n++) {
            for (let i = 0; i < N; i++) replies.push(clients[i].call('say', { from: i, n }, { timeout: 30000 }));
        }
        const rs = await Promise.all(replies);
        assert.equal(rs.filter((r) => r.type !== 'reply').length, 0, 'every say got a reply');
        await waitFor(() => clients.every((c) => c.events.length >= N * M), 20000,
            `every client has ${N * M} events (have ${clients.map((c) => c.events.length).join(',')})`);
        await new Promise((r) => setTimeout(r, 200));    // anything extra would show up now
        const order0 = clients[0].events.map((e) => `${e.data.from}:${e.data.n}`);
        for (const [k, c] of clients.entries()) {
            const keys = c.events.map((e) => `${e.data.from}:${e.data.n}`);
            assert.equal(keys.length, N * M, `client ${k}: exactly ${N * M} events`);
            assert.equal(new Set(keys).size, N * M, `client ${k}: every message exactly once`);
            for (let j = 1; j < c.events.length; j++) {
                assert.ok(c.events[j].seq > c.events[j - 1].seq, `client ${k}: seq strictly increases at ${j}`);
            }
            assert.deepEqual(keys, order0, `client ${k} sees the same order as client 0`);
            assert.deepEqual(c.events.map((e) => e.seq), clients[0].events.map((e) => e.seq),
                `client ${k} sees the same seq numbers`);
        }
        // calls of one socket run in the order sent: each sender's n increase
        for (let i = 0; i < N; i++) {
            const ns = clients[0].events.filter((e) => e.data.from === i).map((e) => e.data.n);
            assert.deepEqual(ns, [...Array(M).keys()], `the says of client ${i} in send order`);
        }
    } finally {
        await closeAll(clients);
    }
});
