// Clients that vanish or misbehave: half frames, garbage, mass disconnects, leaving while
// $connect runs.  The gateway keeps running and the vanished sockets get their $close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { connect, uid, closeAll, waitFor, socketsOf, storageGet, metrics, gatewayPid, objectUrl, sleep, dcall,
    RawSocket, wsFrame } from './helpers.mjs';

test('abrupt disconnects and garbage: the gateway survives, $close runs for the vanished', async () => {
    const gw0 = gatewayPid();
    assert.ok(gw0, 'the gateway runs');
    const halfId = uid('half');
    const garbageId = uid('garbage');
    const massId = uid('mass');
    const N = 30;
    const survivors = [];
    try {
        // 1. upgrade, then half a frame (100 bytes announced, 10 sent), then gone
        const half = await RawSocket.open(objectUrl('it42_room', halfId, { name: 'half' }));
        await waitFor(() => socketsOf('it42_room', halfId).length === 1, 10000, 'the half-frame socket accepted');
        half.send(wsFrame(0x1, '{"type":"c'.padEnd(100, ' ')).subarray(0, 6 + 10));
        await sleep(100);
        half.destroy();

        // 2. upgrade, then garbage: a reserved opcode with all RSV bits, then random bytes
        const garbage = await RawSocket.open(objectUrl('it42_room', garbageId, { name: 'garbage' }));
        await waitFor(() => socketsOf('it42_room', garbageId).length === 1, 10000, 'the garbage socket accepted');
        garbage.send(Buffer.from([0xff, 0xff]), crypto.randomBytes(4096));
        const closedByServer = await garbage.waitEnd(10000).then(() => true, () => false);
        garbage.destroy();
        assert.ok(closedByServer, 'the gateway hangs up on a client that sends garbage');

        // 3. many clients connect (one after the other: 14_connect_batch tests concurrent
        // connects) and vanish at once (no close frame)
        const mass = [];
        for (let i = 0; i < N; i++) mass.push(await connect('it42_room', massId, { query: { name: `m${i}` } }));
        await waitFor(() => socketsOf('it42_room', massId).length === N, 10000, `${N} sockets accepted`);
        // plus some raw ones that upgrade and (once accepted) leave without a word
        const raws = [];
        for (let i = 0; i < 10; i++) raws.push(await RawSocket.open(objectUrl('it42_room', massId, { name: 'raw' })));
        await waitFor(() => socketsOf('it42_room', massId).length === N + 10, 10000, `${N + 10} sockets accepted`);
        const massSockets = socketsOf('it42_room', massId).map((s) => s.socket);
        for (const c of mass) c.ws._socket.destroy();
        for (const s of raws) s.destroy();

        // the gateway is the same process and answers
        const m = await metrics();
        assert.ok(m.durable_sockets_open >= 0);
        assert.equal(gatewayPid(), gw0, 'the gateway did not restart');
        const fresh = await connect('it42_room', uid('fresh'));
        survivors.push(fresh);
        assert.deepEqual((await fresh.call('echo', { alive: true })).result, { alive: true });

        // every vanished socket leaves the view, its $close having run
        await waitFor(() => socketsOf('it42_room', halfId).length === 0, 10000, 'the half-frame socket gone');
        await waitFor(() => socketsOf('it42_room', garbageId).length === 0, 10000, 'the garbage socket gone');
        await waitFor(() => socketsOf('it42_room', massId).length === 0, 15000,
            `the vanished sockets gone (${socketsOf('it42_room', massId).length} left)`);
        const closes = dcall('it42_room', massId, 'keys', { prefix: 'close:' });
        for (const s of massSockets) {
            assert.ok(closes[`close:${s}`], `$close ran for socket ${s}`);
            assert.equal(closes[`close:${s}`].code, 1006, 'an abrupt end is code 1006');
        }
        const halfCloses = Object.values(dcall('it42_room', halfId, 'keys', { prefix: 'close:' }));
        assert.equal(halfCloses.length, 1, '$close ran for the half-frame socket');
        assert.equal(halfCloses[0].code, 1006);
        assert.equal(storageGet('it42_room', halfId, 'messages'), null, 'the half frame was never dispatched');
        assert.equal(gatewayPid(), gw0, 'the gateway did not restart');
        await waitFor(async () => (await metrics()).durable_sockets_open === 1, 10000, 'durable_sockets_open back to 1');
    } finally {
        await closeAll(survivors);
    }
});

test('a client that leaves while $connect runs leaves no socket behind', async () => {
    const id = uid('early');
    const gw0 = gatewayPid();
    const s = await RawSocket.open(objectUrl('it42_room', id, { name: 'early', sleep: '0.5' }));
    s.destroy();
    // $connect commits after the client is gone: the socket must not stay listed
    await waitFor(() => storageGet('it42_room', id, 'connect:early'), 10000, '$connect to finish');
    await sleep(500);
    await waitFor(() => socketsOf('it42_room', id).length === 0, 10000,
        `no open socket listed for the vanished client (listed: ${JSON.stringify(socketsOf('it42_room', id).map((x) => x.socket))})`);
    assert.equal(gatewayPid(), gw0);
});
