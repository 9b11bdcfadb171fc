// auto_response: the gateway answers the request text itself, without running the object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, uid, sql, dcall, waitFor, sleep } from './helpers.mjs';

const hostCalls = () => Number(sql('SELECT sum(calls) FROM durable.hosts'));
// how often the it42_auto handler ran for the object (this read counts as one more run)
const runs = (id) => dcall('it42_auto', id, 'get', { key: 'runs' });

test('auto_response: "ping" gets "pong" from the gateway, no host call', async () => {
    const id = uid('auto');
    const c = await connect('it42_auto', id);
    try {
        assert.deepEqual((await c.call('echo', { x: 0 })).result, { x: 0 });
        const runs0 = runs(id);
        // durable.hosts counts every call of the cluster; alarms of other tests may run now and
        // then, so one quiet window out of three is enough
        let quiet = false;
        let pongs = 0;
        for (let attempt = 0; attempt < 3 && !quiet; attempt++) {
            const calls0 = hostCalls();
            for (let i = 0; i < 5; i++) {
                const from = c.messages.length;
                c.send('ping');
                const m = await c.next(() => true, 10000, from);
                assert.equal(m.text, 'pong', `answer ${i}: ${m.text}`);
                pongs++;
            }
            await sleep(300);
            quiet = hostCalls() === calls0;
        }
        assert.ok(quiet, 'durable.hosts sum(calls) did not change while pinging');
        assert.equal(runs(id), runs0 + 1, 'the handler of the object never ran for the pings');
        assert.equal(c.messages.filter((m) => m.text === 'pong').length, pongs);
        // only the exact request text is answered; anything else takes the normal way
        c.send('"ping"');
        await waitFor(() => dcall('it42_auto', id, 'get', { key: 'last_message' }), 10000, '"ping" (JSON) to go to $message');
        assert.deepEqual(dcall('it42_auto', id, 'get', { key: 'last_message' }), { data: 'ping' });
        const from = c.messages.length;
        c.send('ping ');
        const e = await c.next((m) => m.json?.type === 'error', 10000, from);
        assert.equal(e.json.error.code, '22P02');
        assert.deepEqual((await c.call('echo', { x: 1 })).result, { x: 1 }, 'calls still work');
        // a class without auto_response treats "ping" as a frame that is not JSON
        const plain = await connect('it42_room', id);
        try {
            plain.send('ping');
            const m = await plain.next(() => true, 10000);
            assert.equal(m.json?.error?.code, '22P02', m.text);
        } finally {
            await plain.close();
        }
    } finally {
        await c.close();
    }
});
