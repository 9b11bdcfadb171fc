// G7: an idle object leaves memory while its sockets stay open; host workers restarting do not
// close sockets either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, closeAll, setSetting, waitFor, sql, lit, socketsOf, attachmentOf, sleep } from './helpers.mjs';

const hostObjects = () => Number(sql('SELECT sum(objects) FROM durable.hosts'));
const inMemory = (id) => sql(`SELECT in_memory FROM durable.objects WHERE class = 'it42_room' AND id = ${lit(id)}`);

test('G7 hibernation: idle object leaves memory, its socket stays open, the next call reloads it', async () => {
    const id = uid('hib');
    const clients = [];
    try {
        await setSetting('durable.idle_timeout', '1s');
        const a = await connect('it42_room', id, { query: { name: 'a', tags: 'red' } });
        clients.push(a);
        const b = await connect('it42_room', id, { query: { name: 'b' } });
        clients.push(b);
        const sa = (await a.result('whoami')).socket;
        // keep it busy until the view shows it in memory (written lazily, about once a second)
        let n = 0;
        await waitFor(async () => {
            n = await a.result('inc');
            return inMemory(id) === 't' && hostObjects() >= 1;
        }, 15000, 'the object shown in memory while it is called', 100);
        // then idle: it leaves memory (and the view says so)
        await waitFor(() => inMemory(id) === 'f', 15000, 'the object to leave memory');
        assert.equal(a.closed, null, 'socket a is still open');
        assert.equal(b.closed, null, 'socket b is still open');
        assert.equal(socketsOf('it42_room', id).length, 2, 'both sockets still listed');
        // the next call loads it again: state, sockets, tags and attachment are all there
        const evB = b.next((m) => m.json?.data?.n === n + 1, 10000);
        assert.equal(await a.result('inc'), n + 1, 'the state survived hibernation');
        assert.equal((await evB).json.data.n, n + 1, 'b gets the broadcast of the call after hibernation');
        const list = await b.result('sockets', { tag: 'red' });
        assert.deepEqual(list, [{ socket: sa, tags: ['red'], attachment: attachmentOf('a') }]);
    } finally {
        await closeAll(clients);
        await setSetting('durable.idle_timeout', null, 200);
    }
});

test('host workers terminated: sockets stay open; calls and broadcasts flow again once they are back', async () => {
    const id = uid('hostkill');
    const clients = [];
    try {
        const a = await connect('it42_room', id, { query: { name: 'a' } });
        clients.push(a);
        const b = await connect('it42_room', id, { query: { name: 'b' } });
        clients.push(b);
        assert.equal(await a.result('inc'), 1);
        const before = sql("SELECT string_agg(pid::text, ',' ORDER BY host) FROM durable.hosts");
        const n = Number(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'"));
        assert.ok(n >= 1);
        sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'pg_durable_objects host'");
        // a call sent while the hosts are down or restarting is answered (reply or error), never lost
        const during = await a.call('inc', {}, { timeout: 20000 });
        assert.ok(during.type === 'reply' || (during.type === 'error' && during.error.code),
            `answered: ${JSON.stringify(during)}`);
        await waitFor(() => {
            const rows = sql('SELECT coalesce(pid::text, \'\') FROM durable.hosts ORDER BY host').split('\n');
            const old = before.split(',');
            return rows.length === old.length && rows.every((p, i) => p !== '' && p !== old[i]);
        }, 20000, 'every host restarted with a new pid');
        await sleep(300);
        assert.equal(a.closed, null, 'socket a survived the host restarts');
        assert.equal(b.closed, null, 'socket b survived the host restarts');
        const r = await a.call('inc', {}, { timeout: 15000 });
        assert.equal(r.type, 'reply', `a call works after the restart: ${JSON.stringify(r)}`);
        const k = r.result;
        assert.ok(k === 2 || (k === 3 && during.type === 'reply'), `counter ${k}`);
        await b.next((m) => m.json?.data?.n === k, 10000);
        // the hosts still know both sockets
        assert.equal((await b.result('sockets')).length, 2);
        assert.equal(socketsOf('it42_room', id).length, 2);
        // and a new socket works too
        const c = await connect('it42_room', id, { query: { name: 'c' } });
        clients.push(c);
        assert.equal(await c.result('inc'), k + 1);
    } finally {
        await closeAll(clients);
    }
});
