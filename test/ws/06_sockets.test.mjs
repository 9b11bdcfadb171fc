// The socket API of handlers: broadcast tag/exclude, socket_send, socket_close, sockets(),
// set_attachment, $close args, and the views durable.sockets_all / durable.objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, socketsOf, storageGet, waitFor, attachmentOf, lit, sql } from './helpers.mjs';

// three sockets on one object: a (red), b (blue), c (red, blue); returns {a, b, c, ids}
async function trio(id) {
    const a = await connect('it42_room', id, { query: { name: 'a', tags: 'red' } });
    const b = await connect('it42_room', id, { query: { name: 'b', tags: 'blue' } });
    const c = await connect('it42_room', id, { query: { name: 'c', tags: 'red,blue' } });
    const ids = {
        a: (await a.result('whoami')).socket,
        b: (await b.result('whoami')).socket,
        c: (await c.result('whoami')).socket,
    };
    return { a, b, c, ids, all: [a, b, c] };
}

// broadcast a marker from `from` and wait until every client has it; then the events before it
// are everything each client will ever get from the earlier calls (G5)
async function settle(t, marker) {
    await t.a.result('bcast', { msg: { marker } });
    for (const c of t.all) await c.next((m) => m.json?.data?.marker === marker);
}
const got = (c, key) => c.events.filter((e) => e.data[key] !== undefined).map((e) => e.data[key]);

test('broadcast with a tag reaches only the sockets with that tag', async () => {
    const t = await trio(uid('tag'));
    try {
        await t.b.result('bcast', { msg: { m: 'to-red' }, tag: 'red' });
        await t.a.result('bcast', { msg: { m: 'to-blue' }, tag: 'blue' });
        await t.a.result('bcast', { msg: { m: 'to-green' }, tag: 'green' });
        await settle(t, 'end');
        assert.deepEqual(got(t.a, 'm'), ['to-red']);
        assert.deepEqual(got(t.b, 'm'), ['to-blue']);
        assert.deepEqual(got(t.c, 'm'), ['to-red', 'to-blue']);
    } finally {
        await closeAll(t.all);
    }
});

test('broadcast with exclude skips that socket only', async () => {
    const t = await trio(uid('excl'));
    try {
        await t.a.result('bcast', { msg: { m: 'not-a' }, exclude: t.ids.a });
        await t.a.result('bcast', { msg: { m: 'red-not-c' }, tag: 'red', exclude: t.ids.c });
        await settle(t, 'end');
        assert.deepEqual(got(t.a, 'm'), ['red-not-c']);
        assert.deepEqual(got(t.b, 'm'), ['not-a']);
        assert.deepEqual(got(t.c, 'm'), ['not-a']);
    } finally {
        await closeAll(t.all);
    }
});

test('socket_send reaches one socket; a socket of another object is refused', async () => {
    const id = uid('send');
    const t = await trio(id);
    const other = await connect('it42_room', uid('send-other'));
    try {
        await t.a.result('send_to', { socket: t.ids.b, msg: { dm: 'for-b' } });
        await settle(t, 'end');
        assert.deepEqual(got(t.a, 'dm'), []);
        assert.deepEqual(got(t.b, 'dm'), ['for-b']);
        assert.deepEqual(got(t.c, 'dm'), []);
        // the seq of a socket_send comes from the same per-object sequence
        const seqs = t.b.events.map((e) => e.seq);
        assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
        const otherSocket = (await other.result('whoami')).socket;
        const r = await t.a.call('send_to', { socket: otherSocket, msg: { dm: 'cross' } });
        assert.equal(r.type, 'error', 'socket_send to a socket of another object is an error');
        assert.equal(r.error.code, '22023');
        await other.result('echo', {});
        assert.deepEqual(got(other, 'dm'), [], 'nothing reached the other object\'s socket');
        // and from SQL: no socket of this object has id 0
        const r2 = await t.a.call('send_to', { socket: 987654321, msg: {} });
        assert.equal(r2.error?.code, '22023');
    } finally {
        await closeAll([...t.all, other]);
    }
});

test('socket_close(socket, 4001, \'bye\') closes that socket with 4001 after the call commits', async () => {
    const id = uid('close');
    const t = await trio(id);
    try {
        const reply = t.a.call('close', { socket: t.ids.b, code: 4001, reason: 'bye' });
        const closed = await t.b.waitClose(10000);
        assert.equal(closed.code, 4001);
        assert.equal(closed.reason, 'bye');
        assert.equal((await reply).type, 'reply');
        // the call's write was committed before the close went out
        assert.deepEqual(storageGet('it42_room', id, 'closed_by_call')?.socket, t.ids.b);
        assert.equal(t.a.closed, null);
        assert.equal(t.c.closed, null);
        // $close ran for it with the server's code, and it left the views
        const args = await waitFor(() => storageGet('it42_room', id, `close:${t.ids.b}`), 10000, '$close of b');
        assert.equal(args.code, 4001);
        assert.equal(args.reason, 'bye');
        await waitFor(() => socketsOf('it42_room', id).length === 2, 10000, 'b gone from sockets_all');
        // a code outside 1000 / 3000-4999 is refused
        const bad = await t.a.call('close', { socket: t.ids.c, code: 1006, reason: 'x' });
        assert.equal(bad.type, 'error');
        assert.equal(bad.error.code, '22023');
        assert.equal(t.c.closed, null);
    } finally {
        await closeAll(t.all);
    }
});

test('sockets(tag) in a handler, durable.sockets_all and durable.objects show the open sockets', async () => {
    const id = uid('list');
    const t = await trio(id);
    try {
        const expected = [
            { socket: t.ids.a, tags: ['red'], attachment: attachmentOf('a') },
            { socket: t.ids.b, tags: ['blue'], attachment: attachmentOf('b') },
            { socket: t.ids.c, tags: ['red', 'blue'], attachment: attachmentOf('c') },
        ];
        assert.deepEqual(await t.b.result('sockets'), expected);
        assert.deepEqual(await t.b.result('sockets', { tag: 'red' }), [expected[0], expected[2]]);
        assert.deepEqual(await t.b.result('sockets', { tag: 'none' }), []);
        assert.deepEqual(socketsOf('it42_room', id), expected);
        const connectedAt = sql(`SELECT bool_and(connected_at <= now() AND connected_at > now() - interval '1 hour')
            FROM durable.sockets_all WHERE class = 'it42_room' AND id = ${lit(id)}`);
        assert.equal(connectedAt, 't', 'connected_at is set');
        assert.equal(sql(`SELECT sockets FROM durable.objects WHERE class = 'it42_room' AND id = ${lit(id)}`), '3');
        await t.c.close();
        await waitFor(() => sql(`SELECT sockets FROM durable.objects WHERE class = 'it42_room' AND id = ${lit(id)}`) === '2',
            10000, 'durable.objects.sockets = 2 after a close');
        assert.deepEqual(await t.a.result('sockets'), expected.slice(0, 2));
    } finally {
        await closeAll(t.all);
    }
});

test('set_attachment persists; $close receives {socket, code, reason, tags, attachment}', async () => {
    const id = uid('attach');
    const t = await trio(id);
    try {
        const att = { role: 'admin', n: 1, pad: 'p'.repeat(100) };
        await t.a.result('attach', { attachment: att });
        assert.deepEqual(socketsOf('it42_room', id).find((s) => s.socket === t.ids.a).attachment, att);
        // another socket's call may set it too
        const att2 = { role: 'viewer', pad: 'q'.repeat(100) };
        await t.b.result('attach', { socket: t.ids.a, attachment: att2 });
        assert.deepEqual((await t.c.result('sockets')).find((s) => s.socket === t.ids.a).attachment, att2);

        await t.a.close(4000, 'leaving now');
        const args = await waitFor(() => storageGet('it42_room', id, `close:${t.ids.a}`), 10000, '$close of a');
        assert.deepEqual(args, { socket: t.ids.a, code: 4000, reason: 'leaving now', tags: ['red'], attachment: att2 });
        assert.deepEqual(socketsOf('it42_room', id).map((s) => s.socket), [t.ids.b, t.ids.c]);
        // a close without a code
        t.b.ws.close();
        await t.b.waitClose();
        const argsB = await waitFor(() => storageGet('it42_room', id, `close:${t.ids.b}`), 10000, '$close of b');
        assert.equal(argsB.code, 1005);
        assert.deepEqual(argsB.tags, ['blue']);
        assert.deepEqual(argsB.attachment, attachmentOf('b'));
    } finally {
        await closeAll(t.all);
    }
});
