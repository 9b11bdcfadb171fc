// $close of sockets with small args (no tags, no attachment): the args must reach the handler
// intact.  (The other tests give every socket a padded attachment, so this is the only test
// whose $close args are under 127 bytes; it runs last, as a host crash restarts the cluster.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, storageGet, waitFor, gatewayPid, socketsOf, hostPids, hostsSurvived } from './helpers.mjs';

test('$close with small args (no tags, no attachment) runs with its args, no worker crashes', async () => {
    const pids0 = hostPids();
    const gw0 = gatewayPid();
    const id = uid('small');
    const a = await connect('it42_room', id, { query: { small: '1' } });
    const b = await connect('it42_room', id, { query: { small: '1' } });
    const sa = (await a.result('whoami')).socket;
    const sb = (await b.result('whoami')).socket;
    await a.close(1000, 'bye');
    b.ws._socket.destroy();
    let argsA;
    let argsB;
    try {
        argsA = await waitFor(() => storageGet('it42_room', id, `close:${sa}`), 10000, '$close of a');
        argsB = await waitFor(() => storageGet('it42_room', id, `close:${sb}`), 10000, '$close of b');
    } finally {
        // leave the cluster usable for whatever runs next
        await waitFor(() => !hostPids().includes('-') && gatewayPid(), 30000, 'hosts and gateway running', 200)
            .catch(() => {});
    }
    assert.deepEqual(argsA, { socket: sa, code: 1000, reason: 'bye', tags: [], attachment: null });
    assert.deepEqual(argsB, { socket: sb, code: 1006, reason: '', tags: [], attachment: null });
    assert.ok(hostsSurvived(pids0), `no host worker died (${pids0} -> ${hostPids()})`);
    assert.equal(gatewayPid(), gw0, 'the gateway did not restart');
    assert.deepEqual(socketsOf('it42_room', id), []);
});
