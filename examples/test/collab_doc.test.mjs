// The collaborative document (examples/collab_doc.sql) with several clients editing the same
// positions at once: every client runs the page's own OT client (examples/web/collab.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CollabDoc } from '../web/collab.js';
import { apply, transform, compose, cpLength } from '../web/ot.js';
import { open, uid, dcall, sql, lit, waitFor, sleep, rng, restartGateway } from './helpers.mjs';

const SEED = Number(process.env.COLLAB_SEED || Date.now() % 1000000);

async function clients(t, docId, n) {
    const list = [];
    t.after(() => list.forEach((c) => c.socket.close()));
    for (let i = 0; i < n; i++) {
        const client = `c${i}-${CollabDoc.newClientId()}`;
        const socket = open('collab_doc', docId, { client, name: `client ${i}` }, { callTimeout: 30000 });
        const doc = new CollabDoc(socket, { client });
        doc.on('error', (e) => { doc.lastError = e; });
        list.push({ socket, doc });
    }
    await Promise.all(list.map((c) => c.doc.ready()));
    return list;
}

// every client synced, at the server's version, with the same text
async function converged(list, docId, ms = 30000) {
    return waitFor(() => {
        const server = dcall('collab_doc', docId, 'get');
        return list.every((c) => c.doc.synced && c.doc.version === server.version && c.doc.text === server.text)
            && server;
    }, ms, 100);
}

// a character nobody else uses: client i, edit j, character k
const mark = (i, j, k) => String.fromCodePoint(0x4e00 + i * 1000 + j * 10 + k);

test(`collab_doc: 5 clients x 20 concurrent inserts at overlapping positions keep every insertion (seed ${SEED})`, async (t) => {
    const docId = uid('it60-doc');
    const list = await clients(t, docId, 5);
    list[0].doc.insert(0, 'abcdef');
    assert.ok(await converged(list, docId), 'the seed text reached everyone');
    const inserted = [];
    const random = rng(SEED);
    await Promise.all(list.map(async ({ doc }, i) => {
        for (let j = 0; j < 20; j++) {
            const len = cpLength(doc.text);
            // the same few places for everyone: the start, near the middle, the end
            const pos = [0, 3, Math.min(len, 4), len][Math.floor(random() * 4)];
            const s = mark(i, j, 0) + (random() < 0.5 ? mark(i, j, 1) : '');
            inserted.push(...Array.from(s));
            doc.insert(Math.min(pos, len), s);
            if (random() < 0.7) await sleep(Math.floor(random() * 4));
        }
    }));
    const server = await converged(list, docId);
    assert.ok(server, `all clients converge: ${list.map((c) => JSON.stringify(c.doc.text)).join(' | ')}`);
    const chars = Array.from(server.text);
    for (const ch of inserted) assert.ok(chars.includes(ch), `insertion ${ch} is in the text`);
    assert.equal(chars.length, 6 + inserted.length, 'nothing was added twice or lost');
    for (const ch of 'abcdef') assert.ok(chars.includes(ch), `seed character ${ch} is still there`);
    for (const c of list) assert.equal(c.doc.lastError, undefined);
    list.forEach((c) => c.socket.close());
});

test(`collab_doc: 5 clients x 20 random inserts and deletes converge, nothing lost but what was deleted (seed ${SEED})`, async (t) => {
    const docId = uid('it60-doc');
    const list = await clients(t, docId, 5);
    const seedText = Array.from({ length: 30 }, (_, k) => String.fromCodePoint(0x3400 + k)).join('');
    list[0].doc.insert(0, seedText);
    assert.ok(await converged(list, docId));
    const inserted = new Set(Array.from(seedText));
    const deleted = new Set();
    const random = rng(SEED + 1);
    await Promise.all(list.map(async ({ doc }, i) => {
        for (let j = 0; j < 20; j++) {
            const chars = Array.from(doc.text);
            const pos = Math.min(chars.length, 8 + Math.floor(random() * 6));   // overlapping
            if (random() < 0.4 && chars.length > pos) {
                const len = Math.min(chars.length - pos, 1 + Math.floor(random() * 3));
                chars.slice(pos, pos + len).forEach((ch) => deleted.add(ch));
                doc.delete(pos, len);
            } else {
                const s = mark(i, j, 0) + mark(i, j, 1);
                Array.from(s).forEach((ch) => inserted.add(ch));
                doc.insert(pos, s);
            }
            if (random() < 0.7) await sleep(Math.floor(random() * 4));
        }
    }));
    const server = await converged(list, docId);
    assert.ok(server, `all clients converge: ${list.map((c) => JSON.stringify(c.doc.text)).join(' | ')}`);
    const chars = Array.from(server.text);
    const expected = [...inserted].filter((ch) => !deleted.has(ch));
    assert.equal(new Set(chars).size, chars.length, 'no character twice');
    for (const ch of chars) assert.ok(inserted.has(ch) && !deleted.has(ch), `only live characters (${ch})`);
    for (const ch of expected) assert.ok(chars.includes(ch), `insertion ${ch} that nobody deleted is there`);
    assert.ok(server.version <= 1 + 5 * 20, 'at most one version per edit (edits made while one is in flight are composed)');
    for (const c of list) assert.equal(c.doc.lastError, undefined);
    list.forEach((c) => c.socket.close());
});

test('collab_doc: the text by get on connect, since, and the SQL methods', async (t) => {
    const docId = uid('it60-doc');
    let r = dcall('collab_doc', docId, 'insert', { pos: 0, text: 'Hello' });
    assert.deepEqual(r, { version: 1, op: ['Hello'] });
    r = dcall('collab_doc', docId, 'insert', { pos: 5, text: ' world', base: 1 });
    assert.equal(r.version, 2);
    // made on version 1 while " world" was being added: shifted past nothing, lands at 0
    r = dcall('collab_doc', docId, 'insert', { pos: 0, text: '> ', base: 1 });
    assert.deepEqual(r.op, ['> ']);
    // a delete made on version 2 of "Hello world": "world" moves by the 2 inserted characters
    r = dcall('collab_doc', docId, 'delete', { pos: 6, len: 5, base: 2 });
    assert.deepEqual(r.op, [8, -5]);
    assert.deepEqual(dcall('collab_doc', docId, 'get'), { text: '> Hello ', version: 4 });
    const since = dcall('collab_doc', docId, 'since', { version: 2 });
    assert.deepEqual(since.ops.map((o) => o.version), [3, 4]);
    const s = open('collab_doc', docId, { client: 'late' });
    t.after(() => s.close());
    const doc = new CollabDoc(s, { client: 'late' });
    await doc.ready();
    assert.equal(doc.text, '> Hello ');
    assert.equal(doc.version, 4);
    assert.equal(doc.snapshots, 1);
    // bad input: a clear error, nothing changes
    assert.throws(() => dcall('collab_doc', docId, 'edit', { op: [100] }), /past the end/);
    assert.throws(() => dcall('collab_doc', docId, 'edit', { op: [0] }), /bad operation component/);
    assert.throws(() => dcall('collab_doc', docId, 'edit', { op: 'x' }), /JSON array/);
    assert.throws(() => dcall('collab_doc', docId, 'edit', { op: ['x'], base: 99 }), /does not exist/);
    assert.equal(dcall('collab_doc', docId, 'get').version, 4);
    // an op committed from SQL reaches the socket
    dcall('collab_doc', docId, 'insert', { pos: 8, text: 'there' });
    assert.ok(await waitFor(() => doc.text === '> Hello there'));
    s.close();
});

test('collab_doc: cursors and presence go to the others, not to the sender', async (t) => {
    const docId = uid('it60-doc');
    const a = open('collab_doc', docId, { client: 'alice', name: 'Alice' });
    t.after(() => a.close());
    const da = new CollabDoc(a, { client: 'alice' });
    await da.ready();
    const b = open('collab_doc', docId, { client: 'bob', name: 'Bob' });
    t.after(() => b.close());
    const db = new CollabDoc(b, { client: 'bob' });
    await db.ready();
    // Bob sees Alice in the state he got; Alice hears Bob join
    assert.deepEqual([...db.peers.values()].map((p) => p.name), ['Alice']);
    assert.ok(await waitFor(() => [...da.peers.values()].some((p) => p.name === 'Bob')));
    const aEvents = [];
    const bEvents = [];
    a.on('event', (d) => aEvents.push(d));
    b.on('event', (d) => bEvents.push(d));
    da.insert(0, 'some text');
    assert.ok(await waitFor(() => db.text === 'some text'));
    da.cursor(4);
    assert.ok(await waitFor(() => [...db.peers.values()].some((p) => p.name === 'Alice' && p.pos === 4)));
    await sleep(200);
    assert.equal(aEvents.filter((e) => e.type === 'cursor' || e.type === 'op').length, 0,
        'the sender gets neither its own op nor its own cursor');
    assert.equal(bEvents.filter((e) => e.type === 'op').length, 1);
    // a remote edit before the cursor moves it
    db.insert(0, '>>');
    assert.ok(await waitFor(() => [...da.peers.values()].length === 1 && da.text === '>>some text'));
    assert.equal([...db.peers.values()][0].pos, 6, 'the cursor moved with the local edit');
    const presence = dcall('collab_doc', docId, 'presence');
    assert.deepEqual(presence.map((p) => p.name).sort(), ['Alice', 'Bob']);
    b.close();
    assert.ok(await waitFor(() => da.peers.size === 0), 'Alice sees Bob leave');
    a.close();
});

test('collab_doc: an edit in flight when the socket drops is not lost and not applied twice', async (t) => {
    const docId = uid('it60-doc');
    const a = open('collab_doc', docId, { client: 'a1' }, { minDelay: 50, maxDelay: 200 });
    t.after(() => a.close());
    const da = new CollabDoc(a, { client: 'a1' });
    await da.ready();
    const b = open('collab_doc', docId, { client: 'b1' });
    t.after(() => b.close());
    const db = new CollabDoc(b, { client: 'b1' });
    await db.ready();
    da.insert(0, 'one ');
    a.ws.terminate();            // drop the connection under the edit
    da.insert(0, 'two ');        // made while disconnected
    db.insert(0, 'three ');
    const server = await converged([{ doc: da }, { doc: db }], docId);
    assert.ok(server, `converged: ${JSON.stringify(da.text)} vs ${JSON.stringify(db.text)}`);
    for (const w of ['one', 'two', 'three']) {
        assert.equal(server.text.split(w).length - 1, 1, `"${w}" exactly once in ${JSON.stringify(server.text)}`);
    }
    a.close();
    b.close();
});

test('collab_doc: the same edit twice (client and seq) is applied once and answered alike', () => {
    const docId = uid('it60-doc');
    const first = dcall('collab_doc', docId, 'edit', { op: ['ab'], base: 0, client: 'c1', seq: 1 });
    dcall('collab_doc', docId, 'insert', { pos: 0, text: '>', client: 'c2', seq: 1 });
    const again = dcall('collab_doc', docId, 'edit', { op: ['ab'], base: 0, client: 'c1', seq: 1 });
    assert.deepEqual(again, { ...first, duplicate: true });
    assert.deepEqual(dcall('collab_doc', docId, 'get'), { text: '>ab', version: 2 });
    // another seq of the same client is a new edit
    dcall('collab_doc', docId, 'edit', { op: [3, 'c'], base: 2, client: 'c1', seq: 2 });
    assert.equal(dcall('collab_doc', docId, 'get').text, '>abc');
});

// a CollabDoc whose socket's calls are recorded (which methods the client used)
async function recorded(docId, client, options = {}) {
    const socket = open('collab_doc', docId, { client, name: client }, { callTimeout: 30000, ...options });
    const calls = [];
    const call = socket.call.bind(socket);
    socket.call = (method, ...rest) => { calls.push(method); return call(method, ...rest); };
    const doc = new CollabDoc(socket, { client });
    doc.on('error', (e) => { doc.lastError = e; });
    await doc.ready();
    return { socket, doc, calls };
}

test('collab_doc: after a gateway restart the clients resume: no text reloaded, edits of the outage kept', async (t) => {
    const docId = uid('it60-doc');
    const a = await recorded(docId, 'ra', { minDelay: 100, maxDelay: 400 });
    const b = await recorded(docId, 'rb', { minDelay: 100, maxDelay: 400 });
    t.after(() => { a.socket.close(); b.socket.close(); });
    a.doc.insert(0, 'start.');
    assert.ok(await converged([a, b], docId));
    const closed = Promise.all([a, b].map((c) => new Promise((r) => c.socket.on('close', r))));
    await restartGateway(async () => {
        await closed;
        dcall('collab_doc', docId, 'insert', { pos: 0, text: 'sql1 ', client: 'sql' });
        a.doc.insert(cpLength(a.doc.text), ' a-offline');        // local edits while away
        b.doc.insert(0, 'b-offline ');
        dcall('collab_doc', docId, 'insert', { pos: 0, text: 'sql2 ', client: 'sql' });
        assert.ok(a.socket.state !== 'open' && b.socket.state !== 'open', 'all of it while the sockets were away');
    });
    const server = await converged([a, b], docId);
    assert.ok(server, `converged: ${JSON.stringify(a.doc.text)} vs ${JSON.stringify(b.doc.text)}`);
    for (const w of ['start.', 'sql1', 'sql2', 'a-offline', 'b-offline']) {
        assert.equal(server.text.split(w).length - 1, 1, `"${w}" exactly once in ${JSON.stringify(server.text)}`);
    }
    for (const c of [a, b]) {
        assert.deepEqual(c.calls.filter((m) => m !== 'edit'), ['get'], 'the text was loaded once, nothing caught up by a call');
        assert.equal(c.doc.snapshots, 1);
        assert.equal(c.doc.lastError, undefined);
    }
});

test('collab_doc: a gap is caught up with since, and the text is reloaded only when the log is gone too', async (t) => {
    const docId = uid('it60-doc');
    const options = sql("SELECT options FROM durable.classes WHERE name = 'collab_doc'");
    sql(`SELECT durable.define_class('collab_doc', 'collab_doc_handler', '{"websocket": true, "retain": {"events": 1}}')`);
    t.after(() => sql(`SELECT durable.define_class('collab_doc', 'collab_doc_handler', ${lit(options)})`));
    await sleep(1500);   // the class reaches the gateway
    // a client that comes back 1.5 s after its connection drops
    const a = await recorded(docId, 'ga', { minDelay: 1500, maxDelay: 1500, jitter: 0 });
    t.after(() => a.socket.close());
    const gaps = [];
    a.socket.on('gap', (g) => gaps.push(g));
    a.doc.insert(0, 'x');
    assert.ok(await converged([a], docId));
    const away = async (edits) => {
        const closed = new Promise((r) => a.socket.on('close', r));
        a.socket.ws.terminate();
        await closed;
        sql(`SELECT count(durable.call('collab_doc', ${lit(docId)}, 'insert', '{"pos": 0, "text": "s"}'))
               FROM generate_series(1, ${edits})`);
        assert.notEqual(a.socket.state, 'open', 'the edits were made while the client was away');
    };
    // three edits: more than the one event kept, fewer than the 1,000 operations of the log
    await away(3);
    let server = await converged([a], docId);
    assert.ok(server && server.text === 'sssx', `caught up: ${JSON.stringify(a.doc.text)}`);
    assert.equal(gaps.length, 1, 'the server said events were missing');
    assert.deepEqual(a.calls.filter((m) => m !== 'edit'), ['get', 'since'], 'caught up with since, no reload');
    assert.equal(a.doc.snapshots, 1);
    // 1,001 edits: the log no longer reaches back, so the text is loaded again
    await away(1001);
    server = await converged([a], docId, 60000);
    assert.ok(server && cpLength(server.text) === 1005 && a.doc.text === server.text, 'reloaded');
    assert.equal(gaps.length, 2);
    assert.deepEqual(a.calls.filter((m) => m !== 'edit'), ['get', 'since', 'since', 'get']);
    assert.equal(a.doc.snapshots, 2);
});

test('collab_doc: ot.js apply matches the server on code points', () => {
    assert.equal(apply('a😀b', [1, -1, 'é']), 'aéb');
    const docId = uid('it60-doc');
    dcall('collab_doc', docId, 'insert', { pos: 0, text: 'a😀b' });
    dcall('collab_doc', docId, 'edit', { op: [1, -1, 'é'] });
    assert.equal(dcall('collab_doc', docId, 'get').text, 'aéb');
});

// random operations on random texts, for the properties below
function randomCase(random) {
    const alphabet = Array.from('ab😀cé');
    const text = (n) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
    const op = (s) => {
        const len = cpLength(s);
        const out = [];
        for (let pos = 0; pos < len || random() < 0.3;) {
            const r = Math.floor(random() * 3);
            const n = 1 + Math.floor(random() * Math.min(3, Math.max(1, len - pos)));
            if (r === 0 && pos + n <= len) { out.push(n); pos += n; }
            else if (r === 1 && pos + n <= len) { out.push(-n); pos += n; }
            else out.push(text(1 + Math.floor(random() * 3)));
            if (random() < 0.2) break;
        }
        return out;
    };
    const s = text(Math.floor(random() * 10));
    return { s, a: op(s), b: op(s), aFirst: random() < 0.5, op };
}

test(`collab_doc: transform converges (TP1) and compose composes, in ot.js (seed ${SEED})`, () => {
    const random = rng(SEED + 2);
    for (let i = 0; i < 3000; i++) {
        const { s, a, b, aFirst, op } = randomCase(random);
        const [a2, b2] = transform(a, b, aFirst);
        assert.equal(apply(apply(s, a), b2), apply(apply(s, b), a2), JSON.stringify({ s, a, b, aFirst }));
        const c = op(apply(s, a));
        assert.equal(apply(s, compose(a, c)), apply(apply(s, a), c), JSON.stringify({ s, a, c }));
    }
});

test(`collab_doc: the server's collab_doc_transform gives what ot.js gives (seed ${SEED})`, () => {
    const random = rng(SEED + 3);
    const rows = Array.from({ length: 400 }, (_, i) => {
        const { s, a, b, aFirst } = randomCase(random);
        const [a2, b2] = transform(a, b, aFirst);
        return `(${i}, ${lit(s)}, ${lit(JSON.stringify(a))}::jsonb, ${lit(JSON.stringify(b))}::jsonb, ` +
            `${aFirst}, ${lit(JSON.stringify(a2))}::jsonb, ${lit(apply(apply(s, a), b2))})`;
    }).join(',\n');
    // the same a' as ot.js, and applied after b it gives the text both sides converge to
    const bad = sql(`SELECT coalesce(string_agg(i::text, ','), '')
                       FROM (VALUES ${rows}) v(i, s, a, b, af, a2, converged)
                      WHERE collab_doc_transform(a, b, af) <> a2
                         OR collab_doc_apply(collab_doc_apply(s, b), collab_doc_transform(a, b, af)) <> converged`);
    assert.equal(bad, '', `cases that differ: ${bad}`);
});
