// Browser test of the example pages (run by test/integration/61_browser.sh): Debian's headless
// chromium driven by playwright-core.  Two editors typing at once end with the same text; each
// window has its own participant name; an editor resumes after a gateway restart without loading
// the text again; the dashboard shows a reading and an alert as they arrive; the game moves our
// dot; the client in the page stops on an unknown class.  A screenshot of every page goes to
// $TEST_ROOT/results/.
//
// Environment: TEST_ROOT, DURABLE_PORT, PGHOST/PGPORT/PGDATA (psql, the gateway's pid),
// EXAMPLES_PATH (where the pages are served, default /examples), CHROMIUM (default
// /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { restartGateway } from '../../clients/js/test/helpers.mjs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const HTTP = `http://127.0.0.1:${process.env.DURABLE_PORT}`;
const PAGES = `${HTTP}${process.env.EXAMPLES_PATH || '/examples'}`;
const RESULTS = path.join(process.env.TEST_ROOT || '.', 'results');
const run = `${process.pid}-${Date.now().toString(36)}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sql = (q) => execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1'], { input: q, encoding: 'utf8' }).trim();
const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

let context;
let profile;
const errors = [];

before(async () => {
    mkdirSync(RESULTS, { recursive: true });
    profile = mkdtempSync(path.join(tmpdir(), 'durable-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        viewport: { width: 1200, height: 800 },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
               '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
});

after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
});

// a page whose errors are collected; allowed: console errors the test provokes on purpose
async function newPage(url, { allowed = null } = {}) {
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${url}: ${e.message}`));
    page.on('console', (m) => {
        if (m.type() === 'error' && !(allowed && allowed.test(m.text()))) errors.push(`${url}: console: ${m.text()}`);
    });
    await page.goto(url);
    return page;
}
// what chromium logs for a socket that cannot connect and for the client's look at why
const CONNECT_ERRORS = /WebSocket connection to .* failed|Failed to load resource/;

const docReady = (p) => p.waitForFunction(() => window.collab && window.collab.doc.version >= 0 &&
    !document.getElementById('text').disabled, null, { timeout: 15000 });

const shot = (page, name) => page.screenshot({ path: path.join(RESULTS, `browser-${name}.png`), fullPage: true });

// is s a subsequence of t (its characters in order, maybe with others between)?
function subsequence(s, t) {
    let i = 0;
    for (const ch of t) if (i < s.length && ch === s[i]) i++;
    return i === s.length;
}

test('editor: two pages typing at once show the same text', async () => {
    const doc = `it61-${run}`;
    sql(`SELECT durable.call('collab_doc', ${lit(doc)}, 'insert', '{"pos": 0, "text": "|"}')`);
    const url = (name) => `${PAGES}/doc.html?doc=${doc}&name=${name}`;
    const a = await newPage(url('Ada'));
    const b = await newPage(url('Bob'));
    await Promise.all([docReady(a), docReady(b)]);
    const text = (p) => p.inputValue('#text');
    assert.equal(await text(a), '|');

    // round 1: Ada types after the bar, Bob before it, both at once
    const wordsA = 'Ada writes after the bar. ';
    const wordsB = 'Bob writes before it. ';
    await a.focus('#text');
    await a.keyboard.press('End');
    await b.focus('#text');
    await b.keyboard.press('Home');
    await Promise.all([
        a.locator('#text').pressSequentially(wordsA, { delay: 20 }),
        b.locator('#text').pressSequentially(wordsB, { delay: 20 }),
    ]);
    const settled = async () => {
        for (let i = 0; i < 150; i++) {
            const [ta, tb, sa, sb] = await Promise.all([text(a), text(b),
                a.evaluate(() => window.collab.doc.synced), b.evaluate(() => window.collab.doc.synced)]);
            if (ta === tb && sa && sb) return ta;
            await sleep(100);
        }
        return null;
    };
    let final = await settled();
    assert.ok(final !== null, `both pages show the same text: ${JSON.stringify(await text(a))} vs ${JSON.stringify(await text(b))}`);
    assert.equal(final, `${wordsB}|${wordsA}`);

    // round 2: both type at the very end at once; the characters may interleave, but both
    // pages agree and nothing is lost
    await a.keyboard.press('Control+End');
    await b.keyboard.press('Control+End');
    const moreA = 'aaaa1111';
    const moreB = 'bbbb2222';
    await Promise.all([
        a.locator('#text').pressSequentially(moreA, { delay: 15 }),
        b.locator('#text').pressSequentially(moreB, { delay: 15 }),
    ]);
    final = await settled();
    assert.ok(final !== null, 'both pages agree after typing at the same place');
    const tail = final.slice(`${wordsB}|${wordsA}`.length);
    assert.equal(tail.length, moreA.length + moreB.length, `every character arrived: ${JSON.stringify(tail)}`);
    assert.ok(subsequence(moreA, tail) && subsequence(moreB, tail), `both typings in order: ${JSON.stringify(tail)}`);
    // the server has the same
    const server = JSON.parse(sql(`SELECT durable.call('collab_doc', ${lit(doc)}, 'get')`));
    assert.equal(server.text, final);
    // presence: each page lists the other
    assert.ok(await a.waitForFunction(() => document.getElementById('people').textContent.includes('Bob')));
    await shot(a, 'doc-ada');
    await shot(b, 'doc-bob');
    await a.close();
    await b.close();
});

test('editor: each window has its own participant name, kept across a reload', async () => {
    const doc = `it61-names-${run}`;
    const url = `${PAGES}/doc.html?doc=${doc}`;   // no name in the URL: the page picks one
    const a = await newPage(url);
    const b = await newPage(url);
    await Promise.all([docReady(a), docReady(b)]);
    const name = (p) => p.evaluate(() => window.collab.doc.me.name);
    const [na, nb] = [await name(a), await name(b)];
    const names = JSON.parse(sql(`SELECT jsonb_agg(attachment->>'name') FROM durable.sockets_all
                                   WHERE class = 'collab_doc' AND id = ${lit(doc)}`));
    // the two windows of one browser are two participants (a random name could repeat: 1 in 900)
    assert.ok(na && nb && na !== nb, `two names: ${na} / ${nb}`);
    assert.deepEqual(names.sort(), [na, nb].sort());
    await a.reload();
    await docReady(a);
    assert.equal(await name(a), na, 'a reload keeps the window its name');
    await a.close();
    await b.close();
});

test('editor: after a gateway restart the page resumes without loading the text again', async () => {
    const doc = `it61-resume-${run}`;
    sql(`SELECT durable.call('collab_doc', ${lit(doc)}, 'insert', '{"pos": 0, "text": "base."}')`);
    const page = await newPage(`${PAGES}/doc.html?doc=${doc}&name=Rita`, { allowed: CONNECT_ERRORS });
    await docReady(page);
    // record the methods the page calls from now on
    await page.evaluate(() => {
        const { socket } = window.collab;
        window.calls = [];
        const call = socket.call.bind(socket);
        socket.call = (method, ...rest) => { window.calls.push(method); return call(method, ...rest); };
    });
    await page.focus('#text');
    await page.keyboard.press('Control+End');
    const status = () => page.textContent('#status');
    await restartGateway(async () => {
        await page.waitForFunction(() => document.getElementById('status').textContent === 'reconnecting', null, { timeout: 5000 });
        sql(`SELECT durable.call('collab_doc', ${lit(doc)}, 'insert', '{"pos": 0, "text": "sql-while-away "}')`);
        await page.keyboard.type(' typed-while-away');
        assert.equal(await status(), 'reconnecting', 'all of it while the page was away');
    });
    await page.waitForFunction(() => document.getElementById('status').textContent === 'open', null, { timeout: 15000 });
    let server;
    for (let i = 0; i < 100; i++) {
        server = JSON.parse(sql(`SELECT durable.call('collab_doc', ${lit(doc)}, 'get')`));
        const [text, synced] = await Promise.all([page.inputValue('#text'), page.evaluate(() => window.collab.doc.synced)]);
        if (synced && text === server.text) break;
        await sleep(100);
    }
    assert.equal(server.text, 'sql-while-away base. typed-while-away');
    assert.equal(await page.inputValue('#text'), server.text, 'the page shows the server text');
    assert.equal(await page.evaluate(() => window.collab.doc.version), server.version);
    assert.equal(await page.textContent('#version'), String(server.version), 'the page shows that version');
    assert.deepEqual(await page.evaluate(() => window.calls.filter((m) => m !== 'edit')), [],
        'no get, no since: the missed edit came as a replayed event');
    assert.equal(await page.evaluate(() => window.collab.doc.snapshots), 1, 'the text was loaded once');
    assert.match(await page.evaluate(() => window.collab.socket.ws.url), /[?&]since=\d+/, 'the socket resumed');
    await shot(page, 'doc-resumed');
    await page.close();
});

test('dashboard: a reading and an alert arrive live', async () => {
    const site = `it61-${run}`;
    const page = await newPage(`${PAGES}/dashboard.html?site=${site}`);
    await page.waitForFunction(() => window.dashboard && window.dashboard.socket.state === 'open' &&
        document.getElementById('status').textContent === 'open', null, { timeout: 15000 });
    await sleep(200);   // the snapshot
    const res = await fetch(`${HTTP}/objects/iot_hub/${site}/reading`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ device: 'boiler', value: 42.5 }),
    });
    assert.equal(res.status, 200);
    await page.waitForSelector('[data-device="boiler"] .value:text-is("42.5")', { timeout: 10000 });
    // ten more by SQL, then one 30% off: the alert shows up in the list and on the card
    sql(`SELECT durable.call('iot_hub', ${lit(site)}, 'batch',
                jsonb_build_object('readings', (SELECT jsonb_agg(jsonb_build_object('device', 'boiler', 'value', 40 + i % 3))
                                                   FROM generate_series(1, 10) i)))`);
    sql(`SELECT durable.send('iot_hub', ${lit(site)}, 'reading', '{"device": "boiler", "value": 80}')`);
    await page.waitForSelector('#alerts li:has-text("boiler")', { timeout: 10000 });
    assert.equal(await page.textContent('[data-device="boiler"] .value'), '80');
    assert.match(await page.textContent('[data-device="boiler"] .badge'), /1 alert/);
    assert.equal(await page.evaluate(() => window.dashboard.live), 12);
    await shot(page, 'dashboard');
    await page.close();
});

test('game: the page joins, draws ticks and steers our dot with the arrow keys', async () => {
    const room = `it61-${run}`;
    const page = await newPage(`${PAGES}/game.html?room=${room}&name=tester`);
    await page.waitForFunction(() => window.game && window.game.cur && window.game.ticks.length >= 5, null, { timeout: 15000 });
    const me = () => page.evaluate(() => window.game.cur.players.find((p) => p.id === window.game.you));
    const start = await me();
    await page.keyboard.down(start.x > 400 ? 'ArrowLeft' : 'ArrowRight');
    await sleep(600);
    await page.keyboard.up(start.x > 400 ? 'ArrowLeft' : 'ArrowRight');
    const moved = await me();
    assert.ok(Math.abs(moved.x - start.x) >= 40, `the dot moved (${start.x} -> ${moved.x})`);
    assert.equal(moved.y, start.y);
    await shot(page, 'game');
    await page.close();
    // the last player left: the loop stops
    let alarms = '1';
    for (let i = 0; i < 50 && alarms !== '0'; i++) {
        await sleep(100);
        alarms = sql(`SELECT count(*) FROM durable.alarms WHERE class = 'game' AND id = ${lit(room)}`);
    }
    assert.equal(alarms, '0');
});

test('client: in a browser an unknown class rejects ready() with 42704 and is not retried', async () => {
    const page = await newPage(`${PAGES}/`, { allowed: CONNECT_ERRORS });
    const out = await page.evaluate(async () => {
        const { connect, objectUrl } = await import('./durable.js');
        let attempts = 0;
        const Counted = class extends WebSocket { constructor(...a) { super(...a); attempts += 1; } };
        const base = `ws://${location.host}`;
        const s = connect(objectUrl(base, 'it61_no_such_class', 'x'), { WebSocket: Counted, minDelay: 20 });
        const queued = s.call('get').then(() => 'resolved', (e) => e.code);
        const ready = await s.ready().then(() => 'resolved', (e) => ({ code: e.code, status: e.status, message: e.message }));
        await new Promise((r) => setTimeout(r, 300));
        return { ready, queued: await queued, attempts, state: s.state };
    });
    assert.deepEqual(out, { ready: { code: '42704', status: 404, message: 'unknown class' }, queued: '42704', attempts: 1, state: 'closed' });
    await page.close();
});

test('index page links the three apps, and no page logged an error', async () => {
    const page = await newPage(`${PAGES}/`);
    for (const id of ['#link-doc', '#link-dashboard', '#link-game']) {
        assert.ok(await page.isVisible(id), `${id} is on the page`);
    }
    await shot(page, 'index');
    await page.close();
    assert.deepEqual(errors, []);
});
