// Other web sites cannot make calls: Origin rules for HTTP calls as for WebSockets, no trusting a
// matching Host alone (DNS rebinding), CORS for the origins durable.allowed_origins lists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, upgradeStatus, setSetting, waitFor, uid, dcall, PORT } from './helpers.mjs';

const call = (id, headers = {}, method = 'inc') => request('POST', `/objects/it42_http/${id}/${method}`, {
    body: '{}', headers: { 'content-type': 'application/json', 'content-length': 2, ...headers },
});
const runs = (id) => dcall('it42_http', id, 'inc') - 1;

test('Origin, default rule: only loopback pages of the gateway; a matching Host alone is not enough', async () => {
    await setSetting('durable.allowed_origins', null);
    const id = uid('orig');
    const rebound = `attacker.example:${PORT}`;
    await waitFor(async () => (await call(id, { origin: 'http://evil.example' })).status === 403, 10000,
        'the default rule');
    // a page of another site: refused, also when it sends text/plain (a "simple" request)
    const r1 = await call(id, { origin: 'http://evil.example' });
    assert.equal(r1.json?.error?.code, '42501');
    const r2 = await request('POST', `/objects/it42_http/${id}/inc`, {
        body: '{}', headers: { origin: 'http://evil.example', 'content-type': 'text/plain', 'content-length': 2 } });
    assert.ok(r2.status === 403 || r2.status === 415, `text/plain from another site: ${r2.status}`);
    // DNS rebinding: Origin and Host agree, but name a host that is not a loopback one
    assert.equal((await call(id, { origin: `http://${rebound}`, host: rebound })).status, 403, 'rebinding, HTTP');
    assert.equal(await upgradeStatus('it42_room', uid('rebind'), { origin: `http://${rebound}`, headers: { host: rebound } }),
        403, 'rebinding, WebSocket');
    // a loopback page of the gateway itself, and no Origin at all: allowed
    assert.equal((await call(id, { origin: `http://127.0.0.1:${PORT}` })).status, 200);
    assert.equal((await call(id, { origin: `http://localhost:${PORT}`, host: `localhost:${PORT}` })).status, 200);
    assert.equal((await call(id)).status, 200);
    assert.equal((await call(id, { origin: `http://127.0.0.1:${PORT + 1}` })).status, 403, 'another port');
    assert.equal(runs(id), 3, 'only the allowed calls ran');
});

test('CORS: listed origins get a preflight answer and Access-Control-Allow-Origin; others do not', async () => {
    const id = uid('cors');
    const app = 'https://app.example';
    try {
        await setSetting('durable.allowed_origins', `${app}, http://other.example`);
        await waitFor(async () => (await call(id, { origin: app })).status === 200, 10000, 'the list');
        const pre = await request('OPTIONS', `/objects/it42_http/${id}/inc`, {
            headers: { origin: app, 'access-control-request-method': 'POST',
                'access-control-request-headers': 'content-type' } });
        assert.equal(pre.status, 204, pre.body);
        assert.equal(pre.headers['access-control-allow-origin'], app);
        assert.match(pre.headers['access-control-allow-methods'], /POST/);
        assert.match(pre.headers['access-control-allow-headers'], /content-type/i);
        assert.match(pre.headers.vary, /Origin/);
        const r = await call(id, { origin: app });
        assert.equal(r.status, 200);
        assert.equal(r.headers['access-control-allow-origin'], app);
        // errors carry it too, so that the page can read them
        const e = await call(id, { origin: app }, 'nope');
        assert.equal(e.status, 400);
        assert.equal(e.headers['access-control-allow-origin'], app);
        // an unlisted origin: no CORS, refused
        const bad = await request('OPTIONS', `/objects/it42_http/${id}/inc`, {
            headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
        assert.equal(bad.status, 403);
        assert.equal(bad.headers['access-control-allow-origin'], undefined);
        assert.equal((await call(id, { origin: 'https://evil.example' })).status, 403);
        assert.equal(await upgradeStatus('it42_room', uid('cors-ws'), { origin: app }), 101);
        assert.equal(runs(id), 2);
    } finally {
        await setSetting('durable.allowed_origins', null);
    }
});

test('plain GET of a WebSocket URL: a refused origin learns only "origin not allowed" (never whether a class exists); an allowed one may read why', async () => {
    const evil = 'https://evil.example';
    for (const path of ['/objects/it42_room/x', '/objects/no_such_class/x', '/objects/it42_http/x']) {
        const r = await request('GET', path, { headers: { origin: evil } });
        assert.equal(r.status, 403, `${path}: ${r.body}`);
        assert.equal(r.json.error.message, 'origin not allowed', path);
        assert.equal(r.headers['access-control-allow-origin'], evil, `${path}: the page may read the refusal`);
    }
    const app = 'https://app.example';
    try {
        await setSetting('durable.allowed_origins', app);
        await waitFor(async () => (await request('GET', '/objects/no_such_class/x', { headers: { origin: app } })).status === 404,
            10000, 'the list');
        const r = await request('GET', '/objects/no_such_class/x', { headers: { origin: app } });
        assert.equal(r.headers['access-control-allow-origin'], app);
        assert.equal(r.json.error.code, '42704');
        const ok = await request('GET', '/objects/it42_room/x', { headers: { origin: app } });
        assert.equal(ok.status, 426);
        assert.equal(ok.headers['access-control-allow-origin'], app);
        const same = await request('GET', '/objects/it42_http/x');
        assert.equal(same.status, 403, 'no Origin: not a browser, told the class refuses sockets');
        assert.equal(same.headers['access-control-allow-origin'], undefined);
    } finally {
        await setSetting('durable.allowed_origins', null);
    }
});
