// Durable event streams: seq only grows (across a host kill -9 and a gateway restart), an event
// exists exactly when its call committed, ?since=N replays what a client missed exactly once and
// in order (a gap frame when it is no longer retained), durable.events() reads the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, uid, sql, dcall, lit, sleep, waitFor, upgradeStatus, storageGet, setSetting } from './helpers.mjs';

const events = (cls, id, since = 0) =>
    JSON.parse(sql(`SELECT coalesce(jsonb_agg(jsonb_build_object('seq', seq, 'data', data) ORDER BY seq), '[]')
                      FROM durable.events(${lit(cls)}, ${lit(id)}, ${since})`));
const seqs = (c) => c.events.map((e) => e.seq);
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

const postmaster = () => readFileSync(`${process.env.PGDATA}/postmaster.pid`, 'utf8').split('\n')[0];
const childPid = (title) =>
    Number(execFileSync('pgrep', ['-P', postmaster(), '-f', title], { encoding: 'utf8' }).trim().split('\n')[0]);

// wait until the server answers SQL and the gateway WebSockets again
async function serverBack(cls) {
    await waitFor(() => { try { return sql('SELECT 1') === '1'; } catch { return false; } }, 60000, 'the server answers');
    await waitFor(async () => (await upgradeStatus(cls, uid('probe')).catch(() => 0)) === 101, 30000,
        'the gateway accepts sockets', 200);
}

test('resume: since=N replays every event after N once, in order, then live ones; since is not in the query', async () => {
    const id = uid('resume');
    const a = await connect('it42_stream', id);
    dcall('it42_stream', id, 'emit', { from: 1, count: 10 });
    await waitFor(() => a.events.length === 10, 10000, 'the first 10 events');
    assert.deepEqual(seqs(a), range(1, 10), 'a new object numbers its events from 1');
    await a.close();
    dcall('it42_stream', id, 'emit', { from: 11, count: 5 });     // while nobody listens
    const b = await connect('it42_stream', id, { query: { since: 4, name: 'b' } });
    try {
        await waitFor(() => b.events.length === 11, 10000, 'the 11 events after 4');
        dcall('it42_stream', id, 'emit', { from: 16, count: 1 });
        await waitFor(() => b.events.length === 12, 10000, 'then the live one');
        await sleep(200);
        assert.deepEqual(seqs(b), range(5, 16), 'seq 5..16, each once');
        assert.deepEqual(b.events.map((e) => e.data.n), range(5, 16));
        assert.deepEqual(b.gaps, [], 'no gap: all retained');
        const args = storageGet('it42_stream', id, 'connect');
        assert.equal(args.since, 4, '$connect sees since in its args');
        assert.deepEqual(args.query, { name: 'b' }, 'but not in its query');
        assert.deepEqual(events('it42_stream', id, 14).map((e) => e.seq), [15, 16], 'durable.events after 14');
    } finally {
        await b.close();
    }
    // no since: nothing is replayed
    const c = await connect('it42_stream', id);
    try {
        await sleep(300);
        assert.deepEqual(c.events, []);
    } finally {
        await c.close();
    }
});

test('resume: events made while a resuming $connect waits in the same batch are neither lost nor doubled', async () => {
    const id = uid('batch');
    const producer = await connect('it42_stream', id);
    const clients = [];
    try {
        await producer.result('emit', { from: 1, count: 3 });
        // a burst of emits and resuming connects interleaved: each resumed socket must see 4.. exactly once
        const calls = [];
        for (let i = 0; i < 20; i++) {
            calls.push(producer.call('emit', { from: 4 + i, count: 1 }));
            clients.push(connect('it42_stream', id, { query: { since: 3, hello: `c${i}` } }));
        }
        await Promise.all(calls);
        const opened = await Promise.all(clients);
        await waitFor(() => opened.every((c) => c.events.filter((e) => e.data.n !== undefined).length === 20),
            15000, 'every resumed socket has events 4..23');
        await sleep(300);
        for (const [k, c] of opened.entries()) {
            const s = seqs(c);
            assert.deepEqual([...s].sort((x, y) => x - y), s, `client ${k}: in order`);
            assert.equal(new Set(s).size, s.length, `client ${k}: no duplicate`);
            assert.deepEqual(s, range(4, s.at(-1)), `client ${k}: contiguous from 4`);
        }
        clients.splice(0, clients.length, ...opened);
    } finally {
        await producer.close();
        for (const c of clients) if (c.close) await c.close();
    }
});

test('resume under load: 12 clients dropped at random points while a producer runs each see a contiguous stream', async () => {
    const id = uid('load');
    const TOTAL = 300;
    const producer = await connect('it42_stream', id);
    const state = Array.from({ length: 12 }, () => ({ seen: [], last: 0, reconnects: 0 }));
    let running = true;
    const consumer = async (st) => {
        while (running || st.last < TOTAL) {
            const c = await connect('it42_stream', id, { query: st.last > 0 ? { since: st.last } : {} });
            const stayMs = 20 + Math.floor(Math.random() * 150);
            const started = Date.now();
            while (Date.now() - started < stayMs || (!running && st.last < TOTAL && Date.now() - started < 5000)) {
                await sleep(5);
                for (const e of c.events.splice(0)) { st.seen.push(e.seq); st.last = e.seq; }
                if (c.gaps.length) st.gap = true;
            }
            c.ws.terminate();                                  // abrupt: no close frame
            for (const e of c.events.splice(0)) { st.seen.push(e.seq); st.last = e.seq; }
            st.reconnects++;
            if (!running && st.last >= TOTAL) break;
        }
    };
    const consumers = state.map(consumer);
    try {
        for (let n = 1; n <= TOTAL; n++) await producer.result('emit', { from: n, count: 1 });
        running = false;
        await Promise.all(consumers);
        for (const [k, st] of state.entries()) {
            assert.equal(st.gap, undefined, `client ${k}: no gap (all retained)`);
            const first = st.seen[0];
            assert.deepEqual(st.seen, range(first, TOTAL), `client ${k} (${st.reconnects} connections): contiguous ${first}..${TOTAL}`);
        }
        assert.ok(state.reduce((s, st) => s + st.reconnects, 0) >= 24, 'clients did reconnect');
    } finally {
        running = false;
        await producer.close();
    }
});

test('an event exists exactly when its call committed: a failed call and a caught exception leave no event and no hole', async () => {
    const id = uid('rollback');
    const c = await connect('it42_stream', id);
    try {
        await c.result('emit', { from: 1, count: 1 });
        const failed = await c.call('emit_fail');
        assert.equal(failed.type, 'error');
        await c.result('emit_caught');
        await c.result('emit', { from: 2, count: 1 });
        await waitFor(() => c.events.length === 3, 10000, 'three events');
        await sleep(200);
        assert.deepEqual(c.events.map((e) => [e.seq, e.data]), [[1, { n: 1 }], [2, { after: true }], [3, { n: 2 }]]);
        assert.deepEqual(events('it42_stream', id).map((e) => [e.seq, e.data]),
            [[1, { n: 1 }], [2, { after: true }], [3, { n: 2 }]], 'durable.events: the same three');
    } finally {
        await c.close();
    }
});

test('gap: resuming from before the oldest retained event first gets {"type":"gap","oldest":M}, then those kept', async () => {
    const id = uid('gap');
    dcall('it42_stream5', id, 'emit', { from: 1, count: 12 });    // retains 8..12
    const cases = [[2, [8], range(8, 12)], [7, [], range(8, 12)], [9, [], range(10, 12)], [12, [], []],
        [99, [8], range(8, 12)]];
    for (const [since, gaps, want] of cases) {
        const c = await connect('it42_stream5', id, { query: { since } });
        try {
            await waitFor(() => c.events.length >= want.length, 10000, `since=${since}: ${want.length} events`);
            await sleep(200);
            assert.deepEqual(c.gaps, gaps, `since=${since}: gap frames`);
            assert.deepEqual(seqs(c), want, `since=${since}: events`);
            if (gaps.length) {
                const gapAt = c.messages.findIndex((m) => m.json?.type === 'gap');
                const firstEvent = c.messages.findIndex((m) => m.json?.type === 'event');
                assert.ok(gapAt < firstEvent, 'the gap comes before the events');
            }
        } finally {
            await c.close();
        }
    }
    assert.deepEqual(events('it42_stream5', id).map((e) => e.seq), range(8, 12), 'durable.events keeps 5');
    assert.ok(Number(sql(`SELECT count(*) FROM durable._events WHERE class = 'it42_stream5' AND id = ${lit(id)}`)) <= 6,
        'rows beyond the retention are deleted (at most one step more)');
    // an object without events: since=3 gets a gap at the next seq
    const fresh = await connect('it42_stream5', uid('fresh'), { query: { since: 3 } });
    try {
        await waitFor(() => fresh.gaps.length === 1, 5000, 'a gap');
        assert.deepEqual(fresh.gaps, [1]);
    } finally {
        await fresh.close();
    }
});

test('resume: a socket gets replayed only the broadcasts its tags match, never socket_send to another socket', async () => {
    const id = uid('tags');
    const a = await connect('it42_stream', id);
    try {
        await a.result('emit', { from: 1, count: 1, tag: 'red' });
        await a.result('send_self', { msg: { secret: true } });
        await a.result('emit', { from: 2, count: 1 });
        await waitFor(() => a.events.length === 2, 5000, 'a: the untagged event and its own send');
    } finally {
        await a.close();
    }
    const red = await connect('it42_stream', id, { query: { since: 0, tags: 'red' } });
    const plain = await connect('it42_stream', id, { query: { since: 0 } });
    try {
        await waitFor(() => red.events.length === 2 && plain.events.length === 1, 5000, 'the replays');
        await sleep(200);
        assert.deepEqual(seqs(red), [1, 3], 'red: the red broadcast and the untagged one');
        assert.deepEqual(seqs(plain), [3], 'no tags: the untagged one');
        assert.deepEqual(events('it42_stream', id).map((e) => e.seq), [1, 2, 3], 'durable.events lists all three');
    } finally {
        await red.close();
        await plain.close();
    }
});

test('since must be a whole number from 0: anything else gets 400', async () => {
    for (const since of ['abc', '-1', '1.5', '', '99999999999999999999', '0x10']) {
        assert.equal(await upgradeStatus('it42_stream', uid('bad'), { query: { since } }), 400, `since=${since}`);
    }
    assert.equal(await upgradeStatus('it42_stream', uid('ok'), { query: { since: '0' } }), 101);
});

test('seq only grows across a gateway restart and a host kill -9; clients resume without a hole', async () => {
    const id = uid('crash');
    let c = await connect('it42_stream', id);
    await c.result('emit', { from: 1, count: 5 });
    await waitFor(() => c.events.length === 5, 5000, '5 events');
    // the gateway restarts: sockets drop, the stream lives in the database
    process.kill(childPid('pg_durable_objects gateway'), 'SIGTERM');
    await c.waitClose(10000);
    await serverBack('it42_stream');
    dcall('it42_stream', id, 'emit', { from: 6, count: 2 });
    c = await connect('it42_stream', id, { query: { since: 5 } });
    await waitFor(() => c.events.length === 2, 10000, 'after the gateway restart: 6 and 7');
    assert.deepEqual(seqs(c), [6, 7]);
    // a host killed with SIGKILL: the server restarts (crash recovery), committed events survive
    await c.result('emit', { from: 8, count: 1 });
    await waitFor(() => c.events.length === 3, 5000, 'event 8');
    const host = Number(sql('SELECT min(pid) FROM durable.hosts WHERE pid IS NOT NULL'));
    process.kill(host, 'SIGKILL');
    await c.waitClose(20000);
    await serverBack('it42_stream');
    dcall('it42_stream', id, 'emit', { from: 9, count: 1 });
    const d = await connect('it42_stream', id, { query: { since: 6 } });
    try {
        await waitFor(() => d.events.length === 3, 10000, 'after the crash: 7, 8, 9');
        assert.deepEqual(seqs(d), [7, 8, 9], 'no number given twice, none lost');
        assert.deepEqual(d.events.map((e) => e.data.n), [7, 8, 9]);
    } finally {
        await d.close();
    }
});

// one resuming consumer: reconnects (with since) whenever its socket drops, retrying while the
// server restarts, until it has seen `total` or the deadline passes
async function resumingConsumer(cls, id, total, deadline, st) {
    while (st.last < total && Date.now() < deadline) {
        let c;
        try {
            c = await connect(cls, id, { query: st.last > 0 ? { since: st.last } : { since: 0 }, timeout: 3000 });
        } catch {
            await sleep(100);
            continue;
        }
        st.connections++;
        while (!c.closed && st.last < total && Date.now() < deadline) {
            await sleep(10);
            for (const e of c.events.splice(0)) { st.seen.push(e.seq); st.last = e.seq; }
            if (c.gaps.length) st.gap = c.gaps;
            if (Math.random() < 0.01) c.ws.terminate();     // and drop now and then on our own
        }
        for (const e of c.events.splice(0)) { st.seen.push(e.seq); st.last = e.seq; }
        c.ws.terminate();
    }
}

// a producer from SQL that keeps going through server restarts: emit n = 1..total, each once
async function sqlProducer(cls, id, total, onHalf) {
    let n = 1;
    while (n <= total) {
        try {
            dcall(cls, id, 'emit', { from: n, count: 1 });
            n++;
            if (n === Math.floor(total / 2)) await onHalf();
        } catch {
            // the server restarts: did the call commit? the stream says
            await sleep(200);
            try { n = Number(sql(`SELECT coalesce(max(seq), 0) FROM durable._events WHERE class = ${lit(cls)} AND id = ${lit(id)}`)) + 1; } catch { /* not back yet */ }
        }
        await sleep(2);
    }
}

for (const [what, restart] of [
    ['a gateway restart', () => process.kill(childPid('pg_durable_objects gateway'), 'SIGTERM')],
    ['a host kill -9', () => process.kill(Number(sql('SELECT min(pid) FROM durable.hosts WHERE pid IS NOT NULL')), 'SIGKILL')],
]) {
    test(`resume under load across ${what}: 6 clients dropped at random while a producer runs each see a contiguous stream`, async () => {
        const id = uid('restart');
        const TOTAL = 120;
        const deadline = Date.now() + 90000;
        const states = Array.from({ length: 6 }, () => ({ seen: [], last: 0, connections: 0 }));
        const gatewayBefore = childPid('pg_durable_objects gateway');
        const consumers = states.map((st) => resumingConsumer('it42_stream', id, TOTAL, deadline, st));
        await sqlProducer('it42_stream', id, TOTAL, async () => { restart(); await sleep(500); });
        await Promise.all(consumers);
        await serverBack('it42_stream');
        assert.notEqual(childPid('pg_durable_objects gateway'), gatewayBefore, `the restart happened (${what})`);
        for (const [k, st] of states.entries()) {
            assert.equal(st.gap, undefined, `client ${k}: no gap (all retained)`);
            assert.deepEqual(st.seen, range(1, TOTAL), `client ${k} (${st.connections} connections): every seq 1..${TOTAL} once, in order`);
        }
        assert.deepEqual(events('it42_stream', id).map((e) => e.data.n), range(1, TOTAL),
            'the stream holds each n once: nothing emitted twice across the restart');
    });
}

test('a class defined again with a retention keeps rows written without one out of replays (gap, no crash)', async () => {
    const id = uid('r0');
    sql(`SELECT durable.define_class('it42_r0', 'it42_stream', '{"websocket": true, "retain": {"events": 0}}')`);
    try {
        dcall('it42_r0', id, 'emit', { from: 1, count: 3 });
        assert.deepEqual(events('it42_r0', id), [], 'retain 0: nothing to read');
        sql(`SELECT durable.define_class('it42_r0', 'it42_stream', '{"websocket": true, "retain": {"events": 5}}')`);
        assert.deepEqual(events('it42_r0', id), [], 'the position row has no event to show');
        const c = await connect('it42_r0', id, { query: { since: 0 } });
        try {
            await waitFor(() => c.gaps.length === 1, 5000, 'a gap');
            assert.deepEqual(c.gaps, [4], 'the next seq');
            dcall('it42_r0', id, 'emit', { from: 4, count: 1 });
            await waitFor(() => c.events.length === 1, 5000, 'a live event');
            assert.deepEqual(seqs(c), [4]);
        } finally {
            await c.close();
        }
    } finally {
        sql(`SELECT durable.drop_class('it42_r0', true)`);
    }
});

test('a replay larger than 4 x durable.socket_buffer_bytes keeps its newest events, after a gap', async () => {
    const id = uid('bigreplay');
    try {
        await setSetting('durable.socket_buffer_bytes', '64kB');
        const b64 = Buffer.alloc(20000, 7).toString('base64');
        for (let i = 0; i < 20; i++) dcall('it42_stream', id, 'emit_bytes', { b64 });
        const c = await connect('it42_stream', id, { query: { since: 0 } });
        try {
            await waitFor(() => c.gaps.length === 1 && c.events.length > 0 && c.events.at(-1).seq === 20, 10000, 'the replay');
            await sleep(200);
            const s = seqs(c);
            assert.equal(c.gaps[0], s[0], 'the gap names the first event that follows');
            assert.deepEqual(s, range(s[0], 20), 'then every event up to the newest');
            assert.ok(s.length >= 6 && s.length <= 13, `about 256 kB of 20 kB events (${s.length})`);
            assert.equal(c.closed, null, 'not closed as a slow consumer');
        } finally {
            await c.close();
        }
    } finally {
        await setSetting('durable.socket_buffer_bytes', null);
    }
});
