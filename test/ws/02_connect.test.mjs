// $connect: its args, acceptance with tags and attachment, messages it sends, refusal, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, storageGet, socketsOf, attachmentOf, PORT, waitFor, sql, lit } from './helpers.mjs';

test('$connect receives {query, headers (lower-case names), remote_addr}', async () => {
    const id = uid('args');
    const c = await connect('it42_room', id, {
        query: { name: 'c1', q: 'a b', 'x y': 'é&=/?' },
        headers: { Authorization: 'Bearer tok-1', Cookie: 'k=v; k2=v2', 'User-Agent': 'it42-agent/1.0' },
    });
    try {
        const args = storageGet('it42_room', id, 'connect:c1');
        assert.ok(args, '$connect stored its args');
        assert.deepEqual(Object.keys(args).sort(), ['headers', 'query', 'remote_addr']);
        assert.deepEqual(args.query, { name: 'c1', q: 'a b', 'x y': 'é&=/?' }, 'query names and values percent-decoded');
        for (const k of Object.keys(args.headers)) assert.equal(k, k.toLowerCase(), `header name ${k} is lower case`);
        assert.equal(args.headers.authorization, 'Bearer tok-1');
        assert.equal(args.headers.cookie, 'k=v; k2=v2');
        assert.equal(args.headers['user-agent'], 'it42-agent/1.0');
        assert.equal(args.headers.host, `127.0.0.1:${PORT}`);
        assert.match(args.remote_addr, /^(::ffff:)?127\.0\.0\.1$/);
    } finally {
        await c.close();
    }
});

test('$connect accepts with tags and attachment', async () => {
    const id = uid('accept');
    const c = await connect('it42_room', id, { query: { name: 'c2', tags: 'red,blue' } });
    try {
        const who = await c.result('whoami');
        assert.deepEqual(socketsOf('it42_room', id),
            [{ socket: who.socket, tags: ['red', 'blue'], attachment: attachmentOf('c2') }]);
        const inside = await c.result('sockets');
        assert.deepEqual(inside, [{ socket: who.socket, tags: ['red', 'blue'], attachment: attachmentOf('c2') }]);
    } finally {
        await c.close();
    }
});

test('messages $connect sends arrive right after the open, before any reply', async () => {
    const id = uid('hello');
    const c = await connect('it42_room', id, { query: { name: 'c3', hello: 'hi there' } });
    try {
        // a call sent at once after the open: its reply must come after the hello
        const reply = c.call('whoami');
        const first = await c.next(() => true, 10000);
        assert.equal(first.json?.type, 'event', `first message is the event: ${first.text}`);
        assert.equal(first.json.data.hello, 'hi there');
        assert.equal(typeof first.json.seq, 'number');
        const who = await reply;
        assert.equal(who.type, 'reply');
        assert.equal(first.json.data.socket, who.result.socket, 'socket() inside $connect is the new socket');
        assert.equal(c.messages.indexOf(first), 0);
    } finally {
        await c.close();
    }
});

test('messages $connect sends come before the answers to frames sent while it ran', async () => {
    const id = uid('early');
    const c = await connect('it42_room', id, { query: { name: 'e', hello: 'first', sleep: '0.3' } });
    try {
        // sent at once, answered only after $connect: a call, a frame that is not JSON, a bad call
        c.send({ type: 'call', id: 1, method: 'echo', args: { n: 1 } });
        c.send('not json');
        c.send({ type: 'call', id: 2, method: '$close' });
        await c.next((m) => m.json?.id === 2, 10000);
        await c.next((m) => m.json?.id === 1, 10000);
        await c.next((m) => m.json?.error?.code === '22P02', 10000);
        assert.equal(c.messages[0].json?.data?.hello, 'first',
            `the event of $connect comes first: ${c.messages.map((m) => m.text).join(' | ')}`);
        const reply1 = c.messages.findIndex((m) => m.json?.id === 1 && m.json.type === 'reply');
        const notJson = c.messages.findIndex((m) => m.json?.error?.code === '22P02');
        const bad2 = c.messages.findIndex((m) => m.json?.id === 2);
        assert.ok(reply1 > 0 && notJson > 0 && bad2 > 0);
    } finally {
        await c.close();
    }
});

test('$connect refusing with code 4403 closes the socket with 4403 and the reason', async () => {
    const id = uid('refuse');
    const c = await connect('it42_room', id, { query: { name: 'r', refuse: '4403', reason: 'not you' } });
    const closed = await c.waitClose(10000);
    assert.equal(closed.code, 4403);
    assert.equal(closed.reason, 'not you');
    assert.deepEqual(socketsOf('it42_room', id), [], 'a refused socket is not listed');
    assert.ok(storageGet('it42_room', id, 'connect:r'), 'what a refusing $connect wrote commits');
});

test('$connect refusing: frames sent before the refusal never run; the clients see 4403', async () => {
    // 2 rounds of 20 clients that send two frames at once after the open; $connect refuses
    const codes = [];
    for (let round = 0; round < 2; round++) {
        const ids = [...Array(20).keys()].map(() => uid('refuse-early'));
        const clients = await Promise.all(ids.map((id) =>
            connect('it42_room', id, { query: { name: 'r', refuse: '4403', reason: 'not you' } })
                .then((c) => {
                    c.send({ type: 'call', id: 1, method: 'inc', args: {} });
                    c.send({ some: 'message' });
                    return c;
                })));
        const closes = await Promise.all(clients.map((c) => c.waitClose(15000)));
        assert.equal(clients.flatMap((c) => c.messages).filter((m) => m.json?.type === 'reply').length, 0,
            'no reply for a refused socket');
        // each object has the one key its $connect wrote: neither the call nor the $message ran
        const keys = sql(`SELECT string_agg(DISTINCT keys::text, ',') FROM durable.objects
            WHERE class = 'it42_room' AND id IN (${ids.map(lit).join(', ')})`);
        assert.equal(keys, '1', 'the frames of refused sockets did not run');
        codes.push(...closes.map((x) => `${x.code} ${x.reason}`));
    }
    // Known issue (docs/protocol.md): a client whose early frames are still unread when the
    // gateway closes may see the connection drop (1006) instead of the close frame.
    const other = codes.filter((c) => c !== '4403 not you' && !c.startsWith('1006'));
    assert.deepEqual(other, [], 'a refused socket closes with 4403 (or drops), never anything else');
    const seen = codes.filter((c) => c === '4403 not you').length;
    assert.ok(seen >= codes.length / 2, `most clients see the refusal code and reason (${seen} of ${codes.length})`);
});

test('$connect raising an error closes the socket with 1011', async () => {
    const id = uid('fail');
    const c = await connect('it42_room', id, { query: { name: 'f', fail: '1' } });
    const closed = await c.waitClose(10000);
    assert.equal(closed.code, 1011);
    assert.deepEqual(socketsOf('it42_room', id), []);
    // its writes were rolled back with the failed call
    assert.equal(storageGet('it42_room', id, 'connect:f'), null);
    // and the object still accepts others
    const ok = await connect('it42_room', id, { query: { name: 'ok' } });
    try {
        await waitFor(() => socketsOf('it42_room', id).length === 1, 5000, 'the next socket listed');
    } finally {
        await ok.close();
    }
});
