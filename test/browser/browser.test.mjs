// Browser test of the example pages (run by test/integration/61_browser.sh): Debian's headless
// chromium driven by playwright-core.  Two editors typing at once end with the same text; the
// dashboard shows a reading and an alert as they arrive; the game moves our dot.  A screenshot of
// every page goes to $TEST_ROOT/results/.
//
// Environment: TEST_ROOT, DURABLE_PORT, PGHOST/PGPORT (psql), EXAMPLES_PATH (where the pages are
// served, default /examples), CHROMIUM (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

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

async function newPage(url) {
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${url}: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${url}: console: ${m.text()}`); });
    await page.goto(url);
    return page;
}

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
    const ready = (p) => p.waitForFunction(() => window.collab && window.collab.doc.version >= 0 &&
        !document.getElementById('text').disabled, null, { timeout: 15000 });
    await Promise.all([ready(a), ready(b)]);
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

test('index page links the three apps, and no page logged an error', async () => {
    const page = await newPage(`${PAGES}/`);
    for (const id of ['#link-doc', '#link-dashboard', '#link-game']) {
        assert.ok(await page.isVisible(id), `${id} is on the page`);
    }
    await shot(page, 'index');
    await page.close();
    assert.deepEqual(errors, []);
});
