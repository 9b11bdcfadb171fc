// Before the upgrade: 404 / 403 / Origin / 503 / 426, and ids with "/".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, upgradeStatus, request, setSetting, metrics, waitFor, uid, closeAll, socketsOf, PORT } from './helpers.mjs';

test('upgrade: unknown class is refused with 404 before the upgrade', async () => {
    let err;
    await connect('it42_no_such_class', 'a').catch((e) => { err = e; });
    assert.ok(err, 'the upgrade must be refused');
    assert.equal(err.status, 404, err.message);
    assert.equal(err.json?.error?.code, '42704');
    assert.equal(await upgradeStatus('It42-Not-A-Name', 'a'), 404);
});

test('upgrade: class without websocket: true is refused with 403', async () => {
    let err;
    await connect('it42_plain', 'a').catch((e) => { err = e; });
    assert.ok(err, 'the upgrade must be refused');
    assert.equal(err.status, 403, err.message);
    assert.equal(err.json?.error?.code, '42501');
    // http: true alone does not open WebSockets either
    assert.equal(await upgradeStatus('it42_http', 'a'), 403);
});

test('upgrade: Origin checks of durable.allowed_origins (same host, *, list)', async () => {
    const id = uid('origin');
    const same = `http://127.0.0.1:${PORT}`;
    try {
        // (each change is awaited until the gateway shows it: it reloads on SIGHUP)
        await setSetting('durable.allowed_origins', '');
        await waitFor(async () => await upgradeStatus('it42_room', id, { origin: 'http://evil.example' }) === 403,
            10000, "the gateway to apply allowed_origins = ''");
        assert.equal(await upgradeStatus('it42_room', id), 101, "'': no Origin header is accepted");
        assert.equal(await upgradeStatus('it42_room', id, { origin: same }), 101,
            "'': an Origin matching the Host header is accepted");
        assert.equal(await upgradeStatus('it42_room', id, { origin: `http://127.0.0.1:${PORT + 1}` }), 403,
            "'': an Origin with another port is refused");
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'http://evil.example' }), 403,
            "'': an Origin of another host is refused");
        assert.equal(await upgradeStatus('it42_room', id, { origin: `http://evil.example:${PORT}` }), 403,
            "'': an Origin of another host with the same port is refused");

        await setSetting('durable.allowed_origins', '*');
        await waitFor(async () => await upgradeStatus('it42_room', id, { origin: 'http://other.example' }) === 101,
            10000, "the gateway to apply allowed_origins = '*'");
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'http://evil.example' }), 101,
            "'*': any Origin is accepted");
        assert.equal(await upgradeStatus('it42_room', id, { origin: same }), 101);

        await setSetting('durable.allowed_origins', 'http://a.example, https://b.example:8443');
        await waitFor(async () => await upgradeStatus('it42_room', id, { origin: 'http://other.example' }) === 403,
            10000, 'the gateway to apply the allowed_origins list');
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'http://a.example' }), 101,
            'list: first entry accepted');
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'https://b.example:8443' }), 101,
            'list: second entry (after ", ") accepted');
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'http://c.example' }), 403,
            'list: an unlisted Origin is refused');
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'https://b.example' }), 403,
            'list: same host without the listed port is refused');
        assert.equal(await upgradeStatus('it42_room', id, { origin: 'http://a.example.evil' }), 403,
            'list: a prefix match is not a match');
        let err;
        await connect('it42_room', id, { origin: 'http://c.example' }).catch((e) => { err = e; });
        assert.equal(err?.json?.error?.code, '42501', 'Origin refusal carries code 42501');
    } finally {
        await setSetting('durable.allowed_origins', null);
    }
});

test('upgrade: more than durable.max_sockets sockets get 503', async () => {
    const id = uid('max');
    const clients = [];
    try {
        const base = (await metrics()).durable_sockets_open;
        await setSetting('durable.max_sockets', String(base + 3));
        for (let i = 0; i < 3; i++) clients.push(await connect('it42_room', id));
        // the 4th is refused (once the gateway applied the setting)
        let err;
        await waitFor(async () => {
            err = undefined;
            const c = await connect('it42_room', id).catch((e) => { err = e; });
            if (c) await c.close();
            return err !== undefined;
        }, 10000, 'the 4th socket to be refused');
        assert.equal(err?.status, 503, `the 4th socket is refused with 503 (${err?.message})`);
        assert.equal(err.json?.error?.code, '53300');
        // a freed slot can be used again
        await clients.pop().close();
        await waitFor(async () => (await metrics()).durable_sockets_open === base + 2, 10000, 'a freed slot');
        clients.push(await connect('it42_room', id));
        assert.equal((await clients[2].result('echo', { ok: 1 })).ok, 1);
    } finally {
        await closeAll(clients);
        await setSetting('durable.max_sockets', null);
    }
});

test('upgrade: plain GET (no Upgrade) of a WebSocket URL is 426', async () => {
    const r = await request('GET', '/objects/it42_room/some-id');
    assert.equal(r.status, 426, r.body);
    assert.ok(r.json?.error?.code, `a JSON error body: ${r.body}`);
    // the other refusals come first
    assert.equal((await request('GET', '/objects/it42_plain/some-id')).status, 403);
    assert.equal((await request('GET', '/objects/it42_nothing/some-id')).status, 404);
});

test('upgrade: an id with "/" sent as %2F reaches the handler with the "/"', async () => {
    const id = `${uid('dir')}/sub/leaf`;
    const c = await connect('it42_room', id);   // objectUrl encodes "/" as %2F
    try {
        assert.match(c.ws.url, /%2Fsub%2Fleaf$/);
        const who = await c.result('whoami');
        assert.equal(who.id, id);
        assert.deepEqual(socketsOf('it42_room', id).map((s) => s.socket), [who.socket]);
    } finally {
        await c.close();
    }
});
