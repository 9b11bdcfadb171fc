// Many $connect calls of one object that its host runs in one batch (they queued while the
// object was busy): each socket gets its own tags, and no worker crashes.  Runs last: a host
// crash restarts the whole cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, gatewayPid, socketsOf, waitFor, sleep, hostPids, hostsSurvived } from './helpers.mjs';

test('60 sockets accepted in one batch of $connect calls get their own tags; no worker crashes', async () => {
    const id = uid('batch');
    const N = 60;
    const pids0 = hostPids();
    const gw0 = gatewayPid();
    const clients = [];
    try {
        const blocker = await connect('it42_room', id, { query: { name: 'blocker' } });
        clients.push(blocker);
        // keep the object busy for 0.5 s: the $connect calls queue up behind it
        const busy = blocker.call('bcast_sleep', { msg: { busy: true }, sleep: 0.5 }, { timeout: 20000 });
        await sleep(100);
        const long = 'z'.repeat(900);
        const opened = await Promise.all([...Array(N).keys()].map((i) =>
            connect('it42_room', id, { query: { name: `c${i}`, tags: `t${i},all,${long}`, pad: 'p'.repeat(1000), pad2: 'q'.repeat(1000) },
                timeout: 20000 })));
        clients.push(...opened);
        assert.equal((await busy).type, 'reply');
        await waitFor(() => socketsOf('it42_room', id).length === N + 1, 15000, `${N + 1} sockets listed`);
        const listed = socketsOf('it42_room', id).filter((s) => s.attachment?.name !== 'blocker');
        for (const s of listed) {
            const i = Number(s.attachment.name.slice(1));
            assert.deepEqual(s.tags, [`t${i}`, 'all', long], `tags of socket c${i} in durable.sockets_all`);
        }
        // the gateway's copy of the tags: a broadcast to tag t7 reaches c7 only, to "all" every one
        await blocker.result('bcast', { msg: { to: 't7' }, tag: 't7' });
        await blocker.result('bcast', { msg: { to: 'all' }, tag: 'all' });
        await waitFor(() => opened.every((c) => c.events.some((e) => e.data.to === 'all')), 10000,
            `every socket gets the broadcast to "all" (${opened.filter((c) => c.events.some((e) => e.data.to === 'all')).length} of ${N})`);
        const gotT7 = opened.map((c, i) => (c.events.some((e) => e.data.to === 't7') ? i : -1)).filter((i) => i >= 0);
        assert.deepEqual(gotT7, [7], 'only c7 gets the broadcast to tag t7');
        assert.equal(opened.filter((c) => c.closed).length, 0, 'every socket is still open');
    } catch (e) {
        const pids = await waitFor(() => !hostPids().includes('-') && hostPids(), 20000, 'the hosts', 200)
            .catch(() => 'unknown');
        if (!hostsSurvived(pids0)) e.message = `host workers died (pids ${pids0} -> ${pids}): ${e.message}`;
        throw e;
    } finally {
        await closeAll(clients);
        await waitFor(() => !hostPids().includes('-') && gatewayPid(), 30000, 'hosts and gateway running', 200)
            .catch(() => {});
    }
    assert.ok(hostsSurvived(pids0), `no host worker died (${pids0} -> ${hostPids()})`);
    assert.equal(gatewayPid(), gw0, 'the gateway did not restart');
});
