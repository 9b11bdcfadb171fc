// The client as an npm package: `npm pack` in clients/js gives a tarball with the module, its
// types and its README; installed into an empty project it imports by its name and talks to the
// real cluster (run by test/integration/50_js_client.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql, sleep } from './helpers.mjs';

const clientDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(clientDir, 'package.json'), 'utf8'));
let work;
// npm with a cache of its own in the scratch folder (the test user's home may not be writable)
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd, encoding: 'utf8', env: { ...process.env, npm_config_cache: path.join(work, 'npm-cache'), npm_config_update_notifier: 'false' },
});

let packed;   // what npm pack --json said
before(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'durable-pack-'));
    packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], clientDir))[0];
    sql(`CREATE FUNCTION it50_pack(id text, method text, args jsonb) RETURNS jsonb LANGUAGE sql
         AS $$ SELECT jsonb_build_object('id', id, 'method', method, 'args', args) $$`);
    sql(`SELECT durable.define_class('it50_pack', 'it50_pack', '{"websocket": true}')`);
    await sleep(1500);  // the class reaches the gateway
});

after(() => {
    sql(`SELECT durable.drop_class('it50_pack', true)`);
    sql('DROP FUNCTION it50_pack(text, text, jsonb)');
    if (work) rmSync(work, { recursive: true, force: true });
});

test('npm pack: the tarball holds the module, its types, the README and package.json', () => {
    const files = packed.files.map((f) => f.path).sort();
    assert.deepEqual(files, ['README.md', 'durable.d.ts', 'durable.js', 'package.json']);
    assert.equal(packed.filename, `${pkg.name}-${pkg.version}.tgz`);
    assert.ok(existsSync(path.join(work, packed.filename)));
});

test('durable.d.ts declares every export, option, event and property of durable.js', async () => {
    const types = readFileSync(path.join(clientDir, 'durable.d.ts'), 'utf8');
    const source = readFileSync(path.join(clientDir, 'durable.js'), 'utf8');
    const declared = new Set([...types.matchAll(/^export (?:class|function|interface|type) (\w+)/gm)].map((m) => m[1]));
    for (const name of Object.keys(await import(path.join(clientDir, 'durable.js')))) {
        assert.ok(declared.has(name), `export ${name} is declared`);
    }
    const block = (text, start) => text.slice(text.indexOf(start), text.indexOf('\n}', text.indexOf(start)));
    const options = [...block(source, 'const DEFAULTS = {').matchAll(/^ {4}(\w+):/gm)].map((m) => m[1]);
    const typed = new Set([...block(types, 'export interface ConnectOptions').matchAll(/^ {4}(\w+)\?:/gm)].map((m) => m[1]));
    assert.ok(options.length >= 10);
    for (const o of options) assert.ok(typed.has(o), `option ${o} is in ConnectOptions`);
    const emitted = new Set([...source.matchAll(/#emit\('(\w+)'/g)].map((m) => m[1]));
    const listened = new Set([...types.matchAll(/on\(name: ('[^)]*'(?: \| '[^)]*')*),/g)]
        .flatMap((m) => m[1].split(' | ').map((n) => n.replace(/'/g, ''))));
    for (const e of emitted) assert.ok(listened.has(e), `event '${e}' has an on() overload`);
    for (const p of ['url', 'state', 'lastSeq', 'error']) assert.match(types, new RegExp(`readonly ${p}:`), `property ${p}`);
});

test('the packed tarball installs into an empty project, imports by name and calls an object', () => {
    const tarball = path.join(work, packed.filename);
    const app = path.join(work, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--offline', tarball], app);
    const installed = path.join(app, 'node_modules', pkg.name);
    const meta = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8'));
    assert.equal(meta.type, 'module');
    assert.ok(existsSync(path.join(installed, meta.exports['.'].types)), 'the types named by exports are there');
    assert.match(readFileSync(path.join(installed, 'durable.d.ts'), 'utf8'), /export function connect\(/);
    // a script of the app: the package by its name, the ws package from the test tree
    writeFileSync(path.join(app, 'main.mjs'), `
        import { connect, objectUrl, DurableError, DurableSocket } from '${pkg.name}';
        import { createRequire } from 'node:module';
        const WebSocket = createRequire(process.env.TEST_ROOT + '/test/ws/package.json')('ws');
        const s = connect(objectUrl('ws://127.0.0.1:' + process.env.DURABLE_PORT, 'it50_pack', 'p/1'), { WebSocket });
        const result = await s.call('hello', { n: 1 });
        s.close();
        const missing = connect(objectUrl('ws://127.0.0.1:' + process.env.DURABLE_PORT, 'it50_no_class', 'p'), { WebSocket });
        const refused = await missing.ready().then(() => null, (e) => e instanceof DurableError && e.code);
        console.log(JSON.stringify({ result, refused, handle: s instanceof DurableSocket }));
    `);
    const out = JSON.parse(execFileSync('node', ['main.mjs'], { cwd: app, encoding: 'utf8', timeout: 30000 }));
    assert.deepEqual(out, { result: { id: 'p/1', method: 'hello', args: { n: 1 } }, refused: '42704', handle: true });
});
