// HTTP calls: POST /objects/{class}/{id}/{method}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { request, uid, dcall, PORT, HOST } from './helpers.mjs';

const post = (path, body, headers = {}) => request('POST', path, {
    body,
    headers: { 'content-type': 'application/json', ...(body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {}), ...headers },
});

test('HTTP call: POST with a JSON body gets 200 {"result": ...}', async () => {
    const id = uid('h');
    const r = await post(`/objects/it42_http/${id}/echo`, JSON.stringify({ a: 1, s: 'é' }));
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.deepEqual(r.json, { result: { id, args: { a: 1, s: 'é' } } });
    // any JSON value is fine as args
    const r2 = await post(`/objects/it42_http/${id}/echo`, '[1, 2]');
    assert.deepEqual(r2.json, { result: { id, args: [1, 2] } });
    // it is a call like any other: state is kept, SQL sees it
    assert.deepEqual((await post(`/objects/it42_http/${id}/inc`, '{}')).json, { result: 1 });
    assert.deepEqual((await post(`/objects/it42_http/${id}/inc`, '{}')).json, { result: 2 });
    assert.equal(dcall('it42_http', id, 'inc'), 3);
    // an id with "/" as %2F
    const r3 = await post(`/objects/it42_http/${encodeURIComponent('dir/x y')}/echo`, '{}');
    assert.deepEqual(r3.json, { result: { id: 'dir/x y', args: {} } });
});

// a raw HTTP/1.1 request; resolves to the whole answer (the gateway closes after it)
function raw(text) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(PORT, HOST, () => sock.write(text));
        let out = '';
        const timer = setTimeout(() => { sock.destroy(); resolve(out || 'no answer within 10 s'); }, 10000);
        sock.on('data', (d) => { out += d; });
        sock.on('close', () => { clearTimeout(timer); resolve(out); });
        sock.on('error', reject);
    });
}

test('HTTP call: an empty body runs with {}', async () => {
    const r = await post(`/objects/it42_http/${uid('empty')}/echo`, '');
    assert.equal(r.status, 200, `empty body: ${r.status} ${r.body}`);
    assert.deepEqual(r.json.result.args, {});
    // no Content-Length at all: no body
    const id = uid('nobody');
    const ans = await raw(`POST /objects/it42_http/${id}/echo HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n` +
        'Content-Type: application/json\r\nConnection: close\r\n\r\n');
    assert.match(ans, /^HTTP\/1\.1 200/, ans);
    assert.ok(ans.includes(`{"result": {"id": "${id}", "args": {}}}`), ans);
});

test('HTTP call: invalid JSON body is 400 with code 22P02', async () => {
    for (const body of ['{not json', '{"a": 1} trailing', 'nul']) {
        const r = await post(`/objects/it42_http/${uid('bad')}/echo`, body);
        assert.equal(r.status, 400, `${body}: ${r.body}`);
        assert.equal(r.json?.error?.code, '22P02');
    }
});

test('HTTP call: handler errors map to statuses (22023 -> 400, XX000 -> 500)', async () => {
    const r = await post(`/objects/it42_http/${uid('err')}/bad`, '{"x": "wrong"}');
    assert.equal(r.status, 400, r.body);
    assert.deepEqual(r.json, { error: { code: '22023', message: 'bad argument wrong' } });
    const r2 = await post(`/objects/it42_http/${uid('err')}/boom`, '{}');
    assert.equal(r2.status, 500, r2.body);
    assert.equal(r2.json?.error?.code, 'XX000');
});

test('HTTP call: unknown class 404, class without http 403, "$" method 400', async () => {
    const r = await post('/objects/it42_no_such_class/x/echo', '{}');
    assert.equal(r.status, 404, r.body);
    assert.equal(r.json?.error?.code, '42704');
    for (const cls of ['it42_room', 'it42_plain']) {
        const r2 = await post(`/objects/${cls}/x/echo`, '{}');
        assert.equal(r2.status, 403, `${cls}: ${r2.body}`);
        assert.equal(r2.json?.error?.code, '42501');
    }
    for (const m of ['$connect', '%24close', '$message']) {
        const id = uid('dollar');
        const r3 = await post(`/objects/it42_http/${id}/${m}`, '{}');
        assert.equal(r3.status, 400, `${m}: ${r3.body}`);
        assert.equal(r3.json?.error?.code, '22023');
    }
    assert.equal((await post('/objects/it42_http/onlyid', '{}')).status, 404, 'no method segment');
});

test('HTTP call: a body over durable.max_message_bytes is 413', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 100) });    // over the 1MB default
    const r = await post(`/objects/it42_http/${uid('big')}/echo`, big);
    assert.equal(r.status, 413, r.body.slice(0, 200));
    assert.equal(r.json?.error?.code, '54000');
    // just under the limit works
    const ok = await post(`/objects/it42_http/${uid('big')}/echo`, JSON.stringify({ pad: 'x'.repeat(512 * 1024) }));
    assert.equal(ok.status, 200);
});
