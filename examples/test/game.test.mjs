// The game session (examples/game.sql): players join and leave over WebSockets, inputs steer
// them, a 20 Hz alarm tick broadcasts the state, the loop stops when the last player leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, uid, dcall, sql, lit, waitFor, sleep } from './helpers.mjs';

const alarms = (id) => Number(sql(`SELECT count(*) FROM durable.alarms WHERE class = 'game' AND id = ${lit(id)}`));

test('game: two players join, steer, get ~20 ticks a second; the loop stops when both leave', async (t) => {
    const room = uid('it60-game');
    assert.equal(alarms(room), 0);
    const a = open('game', room, { name: 'ada' });
    t.after(() => a.close());
    const aEvents = [];
    a.on('event', (d) => aEvents.push({ ...d, t: Date.now() }));
    assert.ok(await waitFor(() => aEvents.some((e) => e.type === 'welcome')));
    const welcomeA = aEvents.find((e) => e.type === 'welcome');
    assert.equal(welcomeA.rules.tick_ms, 50);
    assert.equal(alarms(room), 1, 'the first player started the loop');

    const b = open('game', room, { name: 'bob' });
    t.after(() => b.close());
    const bEvents = [];
    b.on('event', (d) => bEvents.push({ ...d, t: Date.now() }));
    assert.ok(await waitFor(() => bEvents.some((e) => e.type === 'welcome')));
    const you = { a: welcomeA.you, b: bEvents.find((e) => e.type === 'welcome').you };
    assert.ok(await waitFor(() => aEvents.some((e) => e.type === 'join' && e.id === you.b)), 'a hears b join');
    assert.equal(alarms(room), 1, 'still one loop');

    // ticks: count what b receives over two seconds
    await sleep(200);
    const from = bEvents.length;
    const t0 = Date.now();
    await sleep(2000);
    const ticks = bEvents.slice(from).filter((e) => e.type === 'tick');
    const rate = ticks.length / ((Date.now() - t0) / 1000);
    assert.ok(rate >= 14 && rate <= 24, `about 20 ticks a second (got ${rate.toFixed(1)}/s)`);
    for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i].tick > ticks[i - 1].tick, 'tick numbers increase');
    const last = ticks[ticks.length - 1];
    assert.deepEqual(last.players.map((p) => p.name).sort(), ['ada', 'bob']);

    // inputs: a moves right by the call method, b moves up by a frame
    const posOf = (tick, id) => tick.players.find((p) => p.id === id);
    const before = posOf(last, you.a);
    assert.deepEqual(await a.call('input', { dx: 1, dy: 0 }), { dx: 1, dy: 0 });
    b.send({ type: 'input', dx: 0, dy: -1 });
    const startTick = last.tick;
    assert.ok(await waitFor(() => {
        const tk = bEvents.filter((e) => e.type === 'tick').at(-1);
        return tk.tick >= startTick + 5 && posOf(tk, you.a).x > before.x;
    }), `a moved right: before ${JSON.stringify(before)} at tick ${startTick}, now ${JSON.stringify(bEvents.filter((e) => e.type === 'tick').at(-1))}`);
    const now = bEvents.filter((e) => e.type === 'tick').at(-1);
    assert.equal(posOf(now, you.a).y, before.y, 'a did not move up or down');
    const bBefore = posOf(last, you.b);
    assert.ok(posOf(now, you.b).y < bBefore.y || posOf(now, you.b).y === 12, 'b moved up (or is at the wall)');
    // input from SQL (no socket) is refused
    assert.throws(() => dcall('game', room, 'input', { dx: 1 }), /player's WebSocket/);
    // the state is in storage
    const st = dcall('game', room, 'state');
    assert.equal(st.running, true);
    assert.equal(st.players.length, 2);

    // a leaves: b hears it, the loop goes on
    a.close();
    assert.ok(await waitFor(() => bEvents.some((e) => e.type === 'leave' && e.id === you.a)));
    const n = bEvents.length;
    await sleep(300);
    assert.ok(bEvents.slice(n).filter((e) => e.type === 'tick').length >= 3, 'ticks go on for b');
    // b leaves: the loop stops, no alarm is left
    b.close();
    assert.ok(await waitFor(() => alarms(room) === 0, 5000), 'no alarm left in durable.alarms');
    const s1 = dcall('game', room, 'state');
    await sleep(300);
    const s2 = dcall('game', room, 'state');
    assert.equal(s2.tick, s1.tick, 'no more ticks');
    assert.equal(s2.running, false);
    assert.deepEqual(s2.players, []);
});

test('game: the class is async and a new player restarts a stopped loop', async (t) => {
    assert.equal(sql(`SELECT durability FROM durable.classes WHERE name = 'game'`), 'async');
    const room = uid('it60-game');
    for (let round = 0; round < 2; round++) {
        const p = open('game', room, { name: `p${round}` });
        const events = [];
        p.on('event', (d) => events.push(d));
        assert.ok(await waitFor(() => events.filter((e) => e.type === 'tick').length >= 3), `round ${round}: ticks`);
        p.close();
        assert.ok(await waitFor(() => alarms(room) === 0, 5000), `round ${round}: the loop stopped`);
    }
});
