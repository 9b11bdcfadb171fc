// G3 on sockets: messages of a call leave only after it committed, never if it failed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, dcall, storageGet, holdStorageLock, setSetting } from './helpers.mjs';

test('G3: a call that broadcasts and then fails sends nothing to anyone', async () => {
    const id = uid('g3fail');
    const clients = [];
    try {
        const caller = await connect('it42_room', id);
        clients.push(caller);
        const observer = await connect('it42_room', id);
        clients.push(observer);
        const r = await caller.call('bcast_fail', { msg: { x: 'must-not-arrive' } });
        assert.equal(r.type, 'error');
        assert.equal(r.error.code, '22023');
        // a later broadcast arrives; by G5 anything of the failed call would have come first
        await caller.result('bcast', { msg: { x: 'marker' } });
        for (const c of clients) {
            await c.next((m) => m.json?.data?.x === 'marker');
            assert.deepEqual(c.events.map((e) => e.data.x), ['marker'], 'only the marker arrived');
        }
        // from SQL too: a failing durable.call sends nothing
        assert.throws(() => dcall('it42_room', id, 'bcast_fail', { msg: { x: 'sql-must-not-arrive' } }), /after broadcast/);
        dcall('it42_room', id, 'bcast', { msg: { x: 'marker2' } });
        for (const c of clients) {
            await c.next((m) => m.json?.data?.x === 'marker2');
            assert.deepEqual(c.events.map((e) => e.data.x), ['marker', 'marker2']);
        }
    } finally {
        await closeAll(clients);
    }
});

test('G3: messages leave only after commit (broadcast, then 0.4 s of work)', async () => {
    const id = uid('g3late');
    const clients = [];
    try {
        const caller = await connect('it42_room', id);
        clients.push(caller);
        const observer = await connect('it42_room', id);
        clients.push(observer);
        const sent = Date.now();
        const reply = caller.call('bcast_sleep', { msg: { x: 'late' }, sleep: 0.4 });
        const ev = await observer.next((m) => m.json?.data?.x === 'late', 15000);
        const r = await reply;
        assert.equal(r.type, 'reply');
        assert.ok(ev.at - sent >= 395, `the event arrived ${ev.at - sent} ms after the call was sent (the call took 400 ms)`);
        const own = caller.messages.findIndex((m) => m.json?.data?.x === 'late');
        const rep = caller.messages.findIndex((m) => m.json?.type === 'reply');
        assert.ok(own >= 0 && own < rep, "the caller gets the call's message before its reply");

        // an event seen means its state is committed: read it back from SQL at once
        const ev2 = observer.next((m) => m.json?.data?.n !== undefined, 10000);
        await caller.result('inc');
        const seen = (await ev2).json.data.n;
        assert.ok(Number(storageGet('it42_room', id, 'n')) >= seen, 'the counter the event announced is stored');
    } finally {
        await closeAll(clients);
    }
});

test('G3: a call that fails at commit sends nothing', async () => {
    const id = uid('g3commit');
    const clients = [];
    // the call's storage write waits at commit for a row lock a session holds, past
    // durable.call_timeout: its batch fails at commit, and the call fails again alone
    dcall('it42_room', id, 'bcast_commit_fail', { msg: { x: 'prime' } });
    await setSetting('durable.call_timeout', '1s');
    try {
        const caller = await connect('it42_room', id);
        clients.push(caller);
        const observer = await connect('it42_room', id);
        clients.push(observer);
        const locked = await holdStorageLock('it42_room', id, 'commit_fail', 3);
        const r = await caller.call('bcast_commit_fail', { msg: { x: 'must-not-arrive' }, n: 1 });
        assert.equal(r.type, 'error', `the call failed at commit: ${JSON.stringify(r)}`);
        assert.equal(r.error.code, '55P03');
        await locked.ended;
        await caller.result('bcast', { msg: { x: 'marker' } });
        for (const c of clients) {
            await c.next((m) => m.json?.data?.x === 'marker');
            assert.deepEqual(c.events.map((e) => e.data.x), ['marker'],
                'the events of a call whose commit failed never go out');
        }
        assert.equal(storageGet('it42_room', id, 'commit_fail'), 0, 'its write was rolled back');
    } finally {
        await setSetting('durable.call_timeout', null);
        await closeAll(clients);
    }
});
