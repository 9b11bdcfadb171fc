// RFC 6455 to the letter, with a raw client that can send anything: the violations a server must
// refuse fail the connection with the right code (1002, 1007, 1009), nothing follows our Close
// frame, the TCP connection ends at once; pings get pongs; UTF-8 is checked across fragments.
// (The Autobahn TestSuite does not run on Debian 12; these follow its sections 2 to 7.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawSocket, wsFrame, closePayload, objectUrl, uid, metrics, storageGet, waitFor } from './helpers.mjs';

const TEXT = 1, BINARY = 2, CLOSE = 8, PING = 9, PONG = 10;

// a raw socket of a fresh it42_room object, accepted and ready (a call was answered)
async function ready(name = 'raw') {
    const id = uid(name);
    const s = await RawSocket.open(objectUrl('it42_room', id, { name }));
    s.id = id;
    s.call(0, 'whoami');
    await s.next((f) => f.opcode === TEXT && JSON.parse(f.payload).id === 0);
    return s;
}

// send bytes, then the server must close with code: its Close frame comes last, the TCP
// connection ends within a second of it
async function expectFail(s, code, what, ...bytes) {
    s.send(...bytes);
    const close = await s.closeFrame(5000).catch((e) => { throw new Error(`${what}: ${e.message}`); });
    assert.equal(close.code, code, `${what}: close code`);
    const ended = await s.waitEnd(3000).catch((e) => { throw new Error(`${what}: ${e.message}`); });
    assert.ok(ended - close.at < 1000, `${what}: TCP ended ${ended - close.at} ms after the Close frame`);
    assert.equal(s.frames.length, close.index + 1, `${what}: nothing after the Close frame`);
    s.destroy();
    return close;
}

test('RFC 6455 5.1: an unmasked client frame fails the connection with 1002', async () => {
    const m0 = await metrics();
    const s = await ready('unmasked');
    await expectFail(s, 1002, 'unmasked text frame',
        wsFrame(TEXT, JSON.stringify({ type: 'call', id: 1, method: 'echo' }), { mask: false }));
    const s2 = await ready('unmasked-ping');
    await expectFail(s2, 1002, 'unmasked ping', wsFrame(PING, 'x', { mask: false }));
    const m1 = await metrics();
    assert.ok(m1.durable_protocol_closes_total >= m0.durable_protocol_closes_total + 2);
});

test('RFC 6455 5.2-5.5: reserved bits and opcodes, bad fragments and control frames fail with 1002', async () => {
    const cases = [
        ['RSV1 set (3.2)', wsFrame(TEXT, '"x"', { rsv: 4 })],
        ['RSV2 set (3.3)', wsFrame(TEXT, '"x"', { rsv: 2 })],
        ['RSV3 set on a ping (3.6)', wsFrame(PING, 'p', { rsv: 1 })],
        ['all RSV bits on a close (3.7)', wsFrame(CLOSE, closePayload(1000), { rsv: 7 })],
        ['reserved opcode 3 (4.1.1)', wsFrame(3, '')],
        ['reserved opcode 7 with payload (4.1.5)', wsFrame(7, 'abc')],
        ['reserved control opcode 11 (4.2.1)', wsFrame(11, '')],
        ['reserved control opcode 15 with payload (4.2.5)', wsFrame(15, 'abc')],
        ['fragmented ping (5.2)', wsFrame(PING, 'a', { fin: false }), wsFrame(0, 'b')],
        ['fragmented pong (5.1)', wsFrame(PONG, 'a', { fin: false }), wsFrame(0, 'b')],
        ['ping of 126 bytes (2.5)', wsFrame(PING, 'x'.repeat(126))],
        ['continuation without a message (5.9)', wsFrame(0, '"x"')],
        ['final continuation without a message (5.10)', wsFrame(0, '"x"', { fin: true })],
        ['text frame inside a fragmented message (5.18)', wsFrame(TEXT, '"a', { fin: false }), wsFrame(TEXT, 'b"')],
        ['64-bit length with its top bit set', Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4])],
    ];
    for (const [what, ...bytes] of cases) {
        const s = await ready('proto');
        await expectFail(s, 1002, what, ...bytes);
    }
});

test('RFC 6455 8.1: text that is not UTF-8 fails with 1007, also in fragments, at the first bad byte', async () => {
    const bad = [
        ['a lone 0xff', Buffer.from([0x22, 0xff, 0x22])],
        ['an overlong NUL (c0 80)', Buffer.from([0x22, 0xc0, 0x80, 0x22])],
        ['a UTF-16 surrogate (ed a0 80, 6.3.1)', Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc,
            0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64])],
        ['a code point above U+10FFFF (f4 90 80 80)', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
        ['a character cut at the end', Buffer.from([0x22, 0x61, 0x22, 0xe2, 0x82])],
    ];
    for (const [what, payload] of bad) {
        await expectFail(await ready('utf8'), 1007, `${what}, one frame`, wsFrame(TEXT, payload));
        // the same split into three fragments, one frame each
        const a = Math.floor(payload.length / 3), b = Math.floor((2 * payload.length) / 3);
        await expectFail(await ready('utf8f'), 1007, `${what}, fragmented`,
            wsFrame(TEXT, payload.subarray(0, a), { fin: false }),
            wsFrame(0, payload.subarray(a, b), { fin: false }), wsFrame(0, payload.subarray(b)));
    }
    // fail fast (6.4.x): the bad byte in the first fragment closes before the message ends
    const s = await ready('failfast');
    await expectFail(s, 1007, 'bad byte in an unfinished message',
        wsFrame(TEXT, Buffer.from([0x22, 0x61, 0xff]), { fin: false }));
});

test('RFC 6455 6.x: valid UTF-8 split inside a character across fragments is accepted', async () => {
    const s = await ready('utf8ok');
    const text = Buffer.from(JSON.stringify({ type: 'call', id: 7, method: 'echo', args: { s: 'κόσμε 𝄞 é' } }));
    // cut inside the multi-byte characters, with a ping between the fragments (5.6)
    const cuts = [text.indexOf(0xce) + 1, text.indexOf(0xf0) + 2];
    s.send(wsFrame(TEXT, text.subarray(0, cuts[0]), { fin: false }), wsFrame(PING, 'mid'),
        wsFrame(0, text.subarray(cuts[0], cuts[1]), { fin: false }), wsFrame(0, '', { fin: false }),
        wsFrame(0, text.subarray(cuts[1])));
    const reply = await s.next((f) => f.opcode === TEXT && JSON.parse(f.payload).id === 7);
    assert.deepEqual(JSON.parse(reply.payload).result, { s: 'κόσμε 𝄞 é' });
    const pong = await s.next((f) => f.opcode === PONG);
    assert.equal(pong.payload.toString(), 'mid');
    // an empty text frame is valid UTF-8 (not JSON: an error frame; the socket stays open)
    s.send(wsFrame(TEXT, ''));
    const err = await s.next((f) => f.opcode === TEXT && JSON.parse(f.payload).type === 'error');
    assert.equal(JSON.parse(err.payload).error.code, '22P02');
    assert.equal(s.ended, null);
    // a pong nobody asked for is ignored
    s.send(wsFrame(PONG, 'unasked'));
    s.call(8, 'echo', { after: 'pong' });
    await s.next((f) => f.opcode === TEXT && JSON.parse(f.payload).id === 8);
    s.destroy();
});

test('RFC 6455 2.x: every ping is answered with its payload; of ten back to back, the last one is', async () => {
    const s = await ready('ping');
    s.send(wsFrame(PING, ''));
    assert.equal((await s.next((f) => f.opcode === PONG)).payload.length, 0, 'an empty ping (2.1)');
    const big = Buffer.from([...Array(125).keys()]);
    let from = s.frames.length;
    s.send(wsFrame(PING, big));
    assert.deepEqual((await s.next((f) => f.opcode === PONG, 5000, from)).payload, big, 'a 125-byte binary ping (2.3, 2.4)');
    from = s.frames.length;
    s.send(...[...Array(10).keys()].map((i) => wsFrame(PING, `ping-${i}`)));
    await s.next((f) => f.opcode === PONG && f.payload.toString() === 'ping-9', 5000, from);
    // pings sent one byte at a time (2.6)
    from = s.frames.length;
    const slow = wsFrame(PING, 'slowly');
    for (const byte of slow) {
        s.send(Buffer.from([byte]));
        await new Promise((r) => setTimeout(r, 2));
    }
    await s.next((f) => f.opcode === PONG && f.payload.toString() === 'slowly', 5000, from);
    // every server frame is unmasked and has no reserved bits
    assert.ok(s.frames.every((f) => !f.masked && f.rsv === 0 && f.fin));
    s.destroy();
});

test('RFC 6455 7.x: close frames: codes echoed, bad codes 1002, bad reasons 1007, nothing after', async () => {
    // valid codes: echoed, then the TCP connection ends at once
    for (const code of [1000, 1001, 1003, 1007, 1011, 1013, 3000, 3999, 4000, 4999]) {
        const s = await ready('close');
        s.send(wsFrame(CLOSE, closePayload(code, 'bye')));
        const close = await s.closeFrame(5000);
        assert.equal(close.code, code, `close ${code} is echoed`);
        const ended = await s.waitEnd(3000);
        assert.ok(ended - close.at < 1000, `close ${code}: TCP ended ${ended - close.at} ms after`);
        assert.equal(s.frames.length, close.index + 1);
        s.destroy();
    }
    // an empty close gets an empty close (7.3.1) and $close sees 1005
    const e = await ready('close-empty');
    const whoami = JSON.parse(e.frames[0].payload).result.socket;
    e.send(wsFrame(CLOSE, ''));
    assert.equal((await e.closeFrame()).code, null);
    await e.waitEnd(3000);
    const args = await waitFor(() => storageGet('it42_room', e.id, `close:${whoami}`), 10000, '$close');
    assert.equal(args.code, 1005);
    // a 1-byte payload (7.3.2) and codes a client may not send (7.9.x, 7.13.x): 1002
    const s1 = await ready('close-1');
    await expectFail(s1, 1002, 'a 1-byte close payload', wsFrame(CLOSE, Buffer.from([0x03])));
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
        await expectFail(await ready('close-bad'), 1002, `close code ${code}`, wsFrame(CLOSE, closePayload(code)));
    }
    // a reason that is not UTF-8 (7.5.1): 1007, and it is not echoed
    const s2 = await ready('close-utf8');
    await expectFail(s2, 1007, 'a close reason that is not UTF-8',
        wsFrame(CLOSE, closePayload(1000, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xed, 0xa0, 0x80]))));
    // frames after the client's Close are not read (7.1.x): the call never runs
    const s3 = await ready('close-then');
    s3.send(wsFrame(CLOSE, closePayload(1000)), wsFrame(TEXT, JSON.stringify({ type: 'call', id: 9, method: 'inc' })));
    await s3.closeFrame();
    await s3.waitEnd(3000);
    assert.ok(!s3.frames.some((f) => f.opcode === TEXT && JSON.parse(f.payload).id === 9));
    assert.equal(storageGet('it42_room', s3.id, 'n'), null, 'the call after the Close did not run');
});

test('RFC 6455 7.1.7: after a protocol error, no error frame and nothing else follows the Close', async () => {
    for (let i = 0; i < 5; i++) {
        const s = await ready('after');
        // a frame that would get an error frame, then a violation, then more work: all at once
        await expectFail(s, 1002, 'not JSON, then RSV bits, then calls', wsFrame(TEXT, 'not json'),
            wsFrame(TEXT, '"x"', { rsv: 4 }), wsFrame(TEXT, JSON.stringify({ type: 'call', id: 2, method: 'inc' })),
            wsFrame(TEXT, 'not json either'));
        assert.equal(storageGet('it42_room', s.id, 'n'), null, 'nothing after the violation ran');
    }
});

test('RFC 6455 10.4: a message announced larger than durable.max_message_bytes fails with 1009 at once', async () => {
    const s = await ready('toobig');
    // the header alone: the gateway does not wait for 2 MB that will never be read
    await expectFail(s, 1009, 'a 2 MB frame header', wsFrame(TEXT, '', { len: 2 * 1024 * 1024 }).subarray(0, 14));
    // fragments that add up to more
    const s2 = await ready('toobig2');
    const part = 'x'.repeat(600 * 1024);
    await expectFail(s2, 1009, 'two fragments of 600 kB', wsFrame(TEXT, `"${part}`, { fin: false }), wsFrame(0, `${part}"`));
});

test('a server-initiated close waits for the client\'s Close, then ends the TCP connection', async () => {
    const s = await ready('srvclose');
    const socket = JSON.parse(s.frames[0].payload).result.socket;
    s.call(1, 'close', { socket, code: 4001, reason: 'bye' });
    const close = await s.closeFrame();
    assert.deepEqual([close.code, close.reason], [4001, 'bye']);
    assert.equal(s.ended, null, 'the server waits for the client\'s Close');
    const t = Date.now();
    s.send(wsFrame(CLOSE, closePayload(4001)));
    const ended = await s.waitEnd(3000);
    assert.ok(ended - t < 1000, `TCP ended ${ended - t} ms after the client's Close`);
    assert.equal(s.frames.length, close.index + 1, 'nothing after the Close frame');
    // a client that never answers the Close is let go after GATEWAY_CLOSE_TIMEOUT (2 s)
    const q = await ready('srvclose-silent');
    const qs = JSON.parse(q.frames[0].payload).result.socket;
    q.call(1, 'close', { socket: qs, code: 4002, reason: '' });
    const c2 = await q.closeFrame();
    const ended2 = await q.waitEnd(5000);
    assert.ok(ended2 - c2.at < 4000, `ended ${ended2 - c2.at} ms after the Close`);
});
