// The WebSocket part of test/integration/49_several_databases.sh: one gateway, two databases
// (DB_A first in durable.database, DB_B second), class it49 with the same name in both.
//   node several_databases.mjs sockets   sockets of object it49/x in A (plain URL and /db/A)
//                                        and in B (/db/B, through the JS client's objectUrl
//                                        with { database }); a broadcast made in one database
//                                        reaches the sockets of that database only, with that
//                                        database's event numbers; a resumed socket replays
//                                        its own database's stream only
//   node several_databases.mjs hold      a socket to B's object, kept open until B's extension
//                                        is dropped: prints its close code
// Prints "ok - NAME" / "not ok - NAME" lines.  Environment: DURABLE_PORT, PGHOST, PGPORT,
// DB_A, DB_B, TEST_ROOT.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.TEST_ROOT}/test/ws/package.json`);
const WebSocket = require('ws');
const { connect, objectUrl } = await import(`${process.env.TEST_ROOT}/clients/js/durable.js`);

const BASE = `ws://127.0.0.1:${process.env.DURABLE_PORT}`;
const A = process.env.DB_A;
const B = process.env.DB_B;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const check = (name, good, why = '') => console.log(good ? `ok - ${name}` : `not ok - ${name}${why ? ` (${why})` : ''}`);

function sql(db, query) {
    return execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', query],
        { encoding: 'utf8' }).trim();
}

// a plain ws socket that records every event frame it gets
function open(url) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, 'durable');
        ws.events = [];
        ws.on('message', (data) => {
            const f = JSON.parse(data.toString());
            if (f.type === 'event') ws.events.push(f);
        });
        ws.on('open', () => resolve(ws));
        ws.on('error', reject);
        ws.on('unexpected-response', (req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    });
}

async function waitFor(pred, ms = 5000) {
    const t0 = Date.now();
    while (!pred() && Date.now() - t0 < ms) await sleep(20);
    return pred();
}

async function sockets() {
    const plainA = await open(`${BASE}/objects/it49/x`);
    const namedA = await open(`${BASE}/db/${encodeURIComponent(A)}/objects/it49/x`);
    const rawB = await open(`${BASE}/db/${encodeURIComponent(B)}/objects/it49/x`);
    const url = objectUrl(BASE, 'it49', 'x', { database: B });
    check(`the JS client's objectUrl with { database } names /db/NAME (${url})`,
        url === `${BASE}/db/${B}/objects/it49/x`);
    const handle = connect(url, { WebSocket });
    const handleEvents = [];
    handle.on('event', (data, seq) => handleEvents.push({ data, seq }));
    await handle.ready();
    check('the JS client opens a socket to an object of the second database', true);
    // each database's object sees only its own sockets
    check('the object in A counts its own 2 sockets', sql(A, "SELECT durable.call('it49', 'x', 'count')") === '2');
    check('the object in B counts its own 2 sockets', sql(B, "SELECT durable.call('it49', 'x', 'count')") === '2');

    sql(B, "SELECT durable.call('it49', 'x', 'shout', '{\"n\": 1}')");
    sql(B, "SELECT durable.call('it49', 'x', 'shout', '{\"n\": 2}')");
    sql(A, "SELECT durable.call('it49', 'x', 'shout', '{\"n\": 10}')");
    await waitFor(() => plainA.events.length >= 1 && namedA.events.length >= 1 &&
        rawB.events.length >= 2 && handleEvents.length >= 2);
    await sleep(300);           // anything that should not come has had time to
    const dbs = (evs) => evs.map((e) => e.data.db).join(',');
    check(`a broadcast in A reaches A's sockets only (plain URL: ${dbs(plainA.events)}; /db/${A}: ${dbs(namedA.events)})`,
        dbs(plainA.events) === A && dbs(namedA.events) === A);
    check(`broadcasts in B reach B's sockets only (${dbs(rawB.events)}; JS client: ${handleEvents.map((e) => e.data.db).join(',')})`,
        dbs(rawB.events) === `${B},${B}` && handleEvents.every((e) => e.data.db === B) &&
        handleEvents.length === 2);
    check(`each database numbers its own event stream (A: ${plainA.events.map((e) => e.seq)}, B: ${rawB.events.map((e) => e.seq)})`,
        plainA.events[0]?.seq === 1 && rawB.events[0]?.seq === 1 && rawB.events[1]?.seq === 2);
    // durable.events of the same object id in each database
    check('durable.events in A lists A\'s event only',
        sql(A, "SELECT string_agg(data->>'n', ',' ORDER BY seq) FROM durable.events('it49', 'x')") === '10');
    check('durable.events in B lists B\'s events only',
        sql(B, "SELECT string_agg(data->>'n', ',' ORDER BY seq) FROM durable.events('it49', 'x')") === '1,2');
    // a socket of B resuming after event 0 replays B's stream, never A's
    const resumed = await open(`${BASE}/db/${B}/objects/it49/x?since=0`);
    await waitFor(() => resumed.events.length >= 2);
    await sleep(200);
    check(`a socket resuming in B replays B's events only (${resumed.events.map((e) => `${e.seq}:${e.data.db}`)})`,
        resumed.events.length === 2 && resumed.events.every((e) => e.data.db === B));
    // calls over the sockets reach the object of the socket's database
    const r = await handle.call('get');
    check(`a call frame over B's socket runs in B (${JSON.stringify(r)})`, r.db === B);
    for (const ws of [plainA, namedA, rawB, resumed]) ws.close();
    handle.close();
    await sleep(300);
}

async function hold() {
    const ws = await open(`${BASE}/db/${B}/objects/it49/held`);
    const code = await new Promise((resolve) => {
        ws.on('close', (c) => resolve(c));
        setTimeout(() => resolve('timeout'), 20000);
    });
    console.log(`closed ${code}`);
}

try {
    if (process.argv[2] === 'sockets') await sockets();
    else if (process.argv[2] === 'hold') await hold();
} catch (e) {
    check(`the WebSocket checks (${process.argv[2]}) ran to their end`, false, e.message);
}
process.exit(0);
