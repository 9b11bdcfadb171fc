// Client frames: calls, errors, bad frames, $message, binary, size limit, fragments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, storageGet, setSetting, waitFor } from './helpers.mjs';

test('frames: a call frame gets a reply frame with the same id', async () => {
    const c = await connect('it42_room', uid('call'));
    try {
        const args = { a: 1, s: 'é ü "quoted" \\ / \n', nested: { list: [1, 2.5, null, true], o: {} } };
        const r = await c.call('echo', args, { id: 7 });
        assert.deepEqual(r, { type: 'reply', id: 7, result: args });
        // a call without args gets {}
        c.send({ type: 'call', id: 8, method: 'echo' });
        const r8 = await c.next((m) => m.json?.id === 8);
        assert.deepEqual(r8.json, { type: 'reply', id: 8, result: {} });
    } finally {
        await c.close();
    }
});

test('frames: a handler error gets an error frame with the SQLSTATE and message', async () => {
    const c = await connect('it42_room', uid('err'));
    try {
        const r = await c.call('fail', { why: 'boom', code: '22012' }, { id: 7 });
        assert.deepEqual(r, { type: 'error', id: 7, error: { code: '22012', message: 'it42 failed: boom' } });
        const r2 = await c.call('no_such_method', {}, { id: 9 });
        assert.equal(r2.type, 'error');
        assert.equal(r2.error.code, '22023');
        assert.equal(c.closed, null, 'errors do not close the socket');
        assert.equal((await c.call('echo', { x: 1 })).type, 'reply');
    } finally {
        await c.close();
    }
});

test('frames: string ids come back as the same string', async () => {
    const c = await connect('it42_room', uid('sid'));
    try {
        const r = await c.call('echo', { v: 'x' }, { id: 'req-42/α' });
        assert.deepEqual(r, { type: 'reply', id: 'req-42/α', result: { v: 'x' } });
        const e = await c.call('fail', {}, { id: 'bad-1' });
        assert.equal(e.type, 'error');
        assert.equal(e.id, 'bad-1');
    } finally {
        await c.close();
    }
});

test('frames: a frame that is not JSON gets error 22P02 and the socket stays open', async () => {
    const c = await connect('it42_room', uid('nojson'));
    try {
        for (const bad of ['{not json', 'hello', '{"type":"call","id":1,', '']) {
            const from = c.messages.length;
            c.send(bad);
            const m = await c.next((x) => x.json?.type === 'error', 10000, from);
            assert.equal(m.json.error.code, '22P02', `for ${JSON.stringify(bad)}: ${m.text}`);
            assert.equal(m.json.id, null);
            assert.equal(typeof m.json.error.message, 'string');
        }
        assert.equal(c.closed, null, 'still open');
        assert.deepEqual((await c.call('echo', { after: true })).result, { after: true });
    } finally {
        await c.close();
    }
});

test('frames: a call of a "$..." method gets error 22023 and runs nothing', async () => {
    const id = uid('dollar');
    const c = await connect('it42_room', id);
    try {
        for (const method of ['$message', '$close', '$connect', '$alarm']) {
            const r = await c.call(method, { data: 'x', socket: 1 }, { id: method });
            assert.equal(r.type, 'error', `${method}: ${JSON.stringify(r)}`);
            assert.equal(r.id, method);
            assert.equal(r.error.code, '22023');
        }
        assert.equal(storageGet('it42_room', id, 'messages'), null, '$message did not run');
        assert.equal(storageGet('it42_room', id, 'close:1'), null, '$close did not run');
    } finally {
        await c.close();
    }
});

test('frames: any other JSON goes to $message as {"data": frame}', async () => {
    const id = uid('msg');
    const c = await connect('it42_room', id);
    try {
        const socket = (await c.result('whoami')).socket;
        const frames = [{ hello: 'world', n: 1 }, [1, 'two', { three: 3 }], 'just a string', 42, null,
            { type: 'chat', text: 'not a call' }, { type: 'call' }];
        // (the last one: type call without a method is a bad call, not a message)
        for (const f of frames.slice(0, 6)) c.send(JSON.stringify(f));
        await waitFor(() => storageGet('it42_room', id, 'messages') === 6, 10000, '6 $message calls');
        for (let i = 0; i < 6; i++) {
            assert.deepEqual(storageGet('it42_room', id, `message:${i + 1}`), { data: frames[i], socket },
                `message ${i + 1} in order, with socket()`);
        }
        // $message sends no reply
        assert.equal(c.messages.filter((m) => m.json?.type === 'reply' && m.json.id !== 1).length, 0);
        const from = c.messages.length;
        c.send(JSON.stringify(frames[6]));
        const e = await c.next((m) => m.json?.type === 'error', 10000, from);
        assert.equal(e.json.error.code, '22023', 'a call frame without a method is refused');
    } finally {
        await c.close();
    }
});

test('frames: numbers in frames keep their exact value (big integers, decimals)', async () => {
    // JSON numbers have no size limit and jsonb keeps them exactly: so must the gateway
    const id = uid('bignum');
    const c = await connect('it42_room', id);
    try {
        c.send('{"type":"call","id":1,"method":"echo","args":{"f":0.1,"d":1.0000000000000000000001}}');
        const m = await c.next((x) => x.json && (x.json.id === 1 || x.json.type === 'error'));
        assert.equal(m.json.type, 'reply', m.text);
        assert.match(m.text, /"f": ?0\.1[,}]/, `0.1 arrives as 0.1: ${m.text}`);
        assert.match(m.text, /"d": ?1\.0000000000000000000001[,}]/, `a long decimal keeps its digits: ${m.text}`);

        c.send('{"type":"call","id":2,"method":"echo","args":{"big":123456789012345678901234567890}}');
        const m2 = await c.next((x) => x.json && (x.json.id === 2 || x.json.id === null));
        assert.equal(m2.json.type, 'reply', `a big integer is valid JSON: ${m2.text}`);
        assert.match(m2.text, /123456789012345678901234567890/);

        c.send('{"big":123456789012345678901234567890}');
        await waitFor(() => storageGet('it42_room', id, 'messages') === 1, 5000,
            `$message with a big integer (got ${c.messages.at(-1)?.text})`);
    } finally {
        await c.close();
    }
});

test('frames: a binary frame runs $message with {"binary": base64 of its bytes}, never a call', async () => {
    const id = uid('bin');
    const c = await connect('it42_room', id);
    try {
        const bytes = Buffer.from('{"type":"call","id":1,"method":"echo"}\u0000\u00ff', 'latin1');
        c.ws.send(bytes, { binary: true });
        await waitFor(() => storageGet('it42_room', id, 'messages') === 1, 5000, '$message of the binary frame');
        const m = storageGet('it42_room', id, 'message:1');
        assert.deepEqual(Object.keys(m).sort(), ['binary', 'socket']);
        assert.ok(Buffer.from(m.binary, 'base64').equals(bytes), 'the exact bytes, base64');
        assert.equal(c.messages.filter((x) => x.json && x.json.type === 'reply').length, 0, 'not run as a call');
        assert.equal(c.closed, null, 'the socket stays open');
    } finally {
        await c.close();
    }
});

test('frames: a frame over durable.max_message_bytes closes the socket with 1009', async () => {
    const id = uid('big');
    let c;
    try {
        await setSetting('durable.max_message_bytes', '4kB');
        c = await connect('it42_room', id);
        const ok = await c.call('echo', { pad: 'y'.repeat(3000) });
        assert.equal(ok.type, 'reply', 'a 3 kB frame is fine');
        // 5 kB: closed with 1009 (retried until the gateway applied the setting: until then the
        // frame is answered)
        let k = 0;
        await waitFor(async () => {
            const id = `big-${k++}`;
            c.send({ type: 'call', id, method: 'echo', args: { pad: 'z'.repeat(5000) } });
            await Promise.race([c.next((m) => m.json?.id === id, 10000), c.closedPromise]).catch(() => {});
            return c.closed;
        }, 10000, 'a 5 kB frame to close the socket', 200);
        assert.equal(c.closed.code, 1009);
        assert.equal(c.messages.filter((m) => m.json?.id === `big-${k - 1}`).length, 0, 'the big call did not run');
    } finally {
        if (c) await c.close();
        await setSetting('durable.max_message_bytes', null);
    }
});

test('frames: fragmented frames are reassembled; a 300 kB frame arrives whole', async () => {
    const c = await connect('it42_room', uid('frag'));
    try {
        const text = JSON.stringify({ type: 'call', id: 'frag', method: 'echo', args: { s: 'fragmented ✓', n: [1, 2, 3] } });
        const cut1 = 10;
        const cut2 = 37;
        c.ws.send(text.slice(0, cut1), { fin: false });
        c.ws.send(text.slice(cut1, cut2), { fin: false });
        c.ws.send(text.slice(cut2), { fin: true });
        const r = await c.next((m) => m.json?.id === 'frag');
        assert.deepEqual(r.json, { type: 'reply', id: 'frag', result: { s: 'fragmented ✓', n: [1, 2, 3] } });

        const big = 'b'.repeat(300 * 1024);
        const r2 = await c.call('echo', { big }, { id: 'big' });
        assert.equal(r2.type, 'reply');
        assert.equal(r2.result.big.length, big.length);
        assert.equal(r2.result.big, big);
        // many fragments of a big frame
        const t = JSON.stringify({ type: 'call', id: 'many', method: 'echo', args: { big } });
        for (let i = 0; i < t.length; i += 7000) c.ws.send(t.slice(i, i + 7000), { fin: i + 7000 >= t.length });
        const r3 = await c.next((m) => m.json?.id === 'many', 15000);
        assert.equal(r3.json.result.big, big);
    } finally {
        await c.close();
    }
});

test('frames: duplicate keys are decided once, as jsonb does: the last one, escapes decoded', async () => {
    const id = uid('dupkeys');
    const c = await connect('it42_room', id);
    try {
        // the handler gets the args jsonb keeps ("\u0061rgs" is "args"), answered to the id jsonb keeps
        c.send('{"type":"call","id":1,"method":"echo","args":1,"\\u0061rgs":2}');
        let m = await c.next((x) => x.json?.id === 1);
        assert.deepEqual(m.json, { type: 'reply', id: 1, result: 2 });
        c.send('{"type":"call","id":2,"\\u0069d":3,"method":"echo","args":{}}');
        m = await c.next((x) => x.json?.id === 3 || x.json?.id === 2);
        assert.equal(m.json.id, 3, 'the last id');
        c.send('{"type":"call","id":4,"method":"fail","\\u006dethod":"echo","args":{"k":4}}');
        m = await c.next((x) => x.json?.id === 4);
        assert.deepEqual(m.json, { type: 'reply', id: 4, result: { k: 4 } }, 'the last method');
        // a later "type" that is not "call" makes the frame a $message, whole
        c.send('{"type":"call","id":5,"method":"echo","type":"chat"}');
        await waitFor(() => storageGet('it42_room', id, 'messages') === 1, 10000, 'the $message');
        assert.deepEqual(storageGet('it42_room', id, 'message:1').data, { type: 'chat', id: 5, method: 'echo' });
    } finally {
        await c.close();
    }
});
