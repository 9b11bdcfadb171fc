// HTTP exactly once, and every connection answered or closed in bounded time: Content-Length 0,
// bytes after the body, pipelined and keep-alive requests each answered once and in order;
// CONNECT, header names that are prefixes of known ones, %00, half a request head.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawHttp, parseAnswers, dcall, uid, HOST, PORT, gatewayPid } from './helpers.mjs';

const host = `Host: ${HOST}:${PORT}\r\n`;
const json = 'Content-Type: application/json\r\n';
const counter = (id) => dcall('it42_http', id, 'inc') - 1;   // the count before this read

function post(id, body, extra = '') {
    return `POST /objects/it42_http/${id}/inc HTTP/1.1\r\n${host}${json}Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `${extra}\r\n${body}`;
}

test('HTTP: a call with Content-Length: 0 runs once', async () => {
    const id = uid('cl0');
    const r = await rawHttp(post(id, '', 'Connection: close\r\n'));
    const answers = parseAnswers(r.text);
    assert.equal(answers.length, 1, r.text);
    assert.deepEqual(JSON.parse(answers[0].body), { result: 1 });
    assert.equal(counter(id), 1, 'inc ran once');
});

test('HTTP: bytes after the body (a CRLF) do not run the call again', async () => {
    const id = uid('crlf');
    const r = await rawHttp(`${post(id, '{}')}\r\n`, 1500);
    const answers = parseAnswers(r.text);
    assert.equal(answers.length, 1, r.text);
    assert.equal(answers[0].status, 200);
    assert.equal(counter(id), 1, 'inc ran once');
});

test('HTTP: pipelined and keep-alive requests are each answered once, in order', async () => {
    const id = uid('pipe');
    // three calls and two GETs in one write, on one connection
    const text = post(id, '{}') + post(id, '') + `GET /healthz HTTP/1.1\r\n${host}\r\n` +
        post(id, '{"a": 1}') + `GET /nope HTTP/1.1\r\n${host}Connection: close\r\n\r\n`;
    const r = await rawHttp(text);
    assert.ok(r.ended, 'closed after the request with Connection: close');
    const answers = parseAnswers(r.text);
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 404], r.text);
    assert.deepEqual(answers.filter((a, i) => i !== 2 && i !== 4).map((a) => JSON.parse(a.body).result), [1, 2, 3]);
    assert.equal(answers[2].body, 'ok\n');
    assert.equal(counter(id), 3, 'each call ran once');
    // three GETs pipelined: three answers (the old gateway answered only the first)
    const g = await rawHttp(`GET /healthz HTTP/1.1\r\n${host}\r\n`.repeat(2) +
        `GET /healthz HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
    assert.deepEqual(parseAnswers(g.text).map((a) => a.status), [200, 200, 200]);
});

test('HTTP: a call needs Content-Type: application/json (415, nothing runs)', async () => {
    const id = uid('ctype');
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
        'application/jsonx', null]) {
        const r = await rawHttp(`POST /objects/it42_http/${id}/inc HTTP/1.1\r\n${host}` +
            `${ct ? `Content-Type: ${ct}\r\n` : ''}Content-Length: 2\r\nConnection: close\r\n\r\n{}`);
        const [a] = parseAnswers(r.text);
        assert.equal(a?.status, 415, `${ct}: ${r.text}`);
        assert.equal(JSON.parse(a.body).error.code, '0A000');
    }
    const ok = await rawHttp(post(id, '{}', 'Connection: close\r\n').replace(json,
        'Content-Type: Application/JSON; charset=utf-8\r\n'));
    assert.equal(parseAnswers(ok.text)[0].status, 200, 'parameters and case do not matter');
    assert.equal(counter(id), 1, 'only the JSON call ran');
});

test('HTTP: odd requests are answered at once (CONNECT, prefix header names, %00, bad escapes)', async () => {
    const pid = gatewayPid();
    const cases = [
        ['CONNECT', `CONNECT ${HOST}:${PORT} HTTP/1.1\r\n${host}\r\n`, 405],
        ['Hos:', 'GET /healthz HTTP/1.1\r\nHos: x\r\n\r\n', 200],
        ['Co:', `GET /healthz HTTP/1.1\r\n${host}Co: x\r\n\r\n`, 200],
        ['X-Forwarded:', `GET /healthz HTTP/1.1\r\n${host}X-Forwarded: x\r\n\r\n`, 200],
        ['%00', `GET /%00 HTTP/1.1\r\n${host}\r\n`, 400],
        ['%00 in a query', `GET /objects/it42_room/a?x=%00 HTTP/1.1\r\n${host}\r\n`, 400],
        ['%zz', `GET /a%zz HTTP/1.1\r\n${host}\r\n`, 400],
        ['a space before the colon', `GET /healthz HTTP/1.1\r\n${host}Bad : x\r\n\r\n`, 400],
        ['line folding', `GET /healthz HTTP/1.1\r\n${host}X-A: a\r\n b\r\n\r\n`, 400],
        ['two Content-Lengths', `POST /objects/it42_http/x/inc HTTP/1.1\r\n${host}${json}Content-Length: 1\r\nContent-Length: 2\r\n\r\n{}`, 400],
        ['chunked', `POST /objects/it42_http/x/inc HTTP/1.1\r\n${host}${json}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 411],
        ['HTTP/2.0', `GET /healthz HTTP/2.0\r\n${host}\r\n`, 505],
        ['garbage', 'GARBAGE\r\n\r\n', 400],
    ];
    for (const [what, text, status] of cases) {
        const r = await rawHttp(text, 5000, { answers: 1 });
        const [a] = parseAnswers(r.text);
        assert.equal(a?.status, status, `${what}: ${JSON.stringify(r.text.slice(0, 200))}`);
        assert.ok(r.ms < 2000, `${what}: answered in ${r.ms} ms`);
    }
    assert.equal(gatewayPid(), pid);
});

test('HTTP: half a request head is given up after 10 s; Expect: 100-continue gets its 100', async () => {
    const slow = rawHttp(`GET /healthz HTTP/1.1\r\n${host}X-Slow: `, 20000);
    // meanwhile: a body sent only after "100 Continue"
    const id = uid('expect');
    const r = await rawHttp(`POST /objects/it42_http/${id}/inc HTTP/1.1\r\n${host}${json}Content-Length: 2\r\n` +
        'Expect: 100-continue\r\nConnection: close\r\n\r\n', 1500);
    assert.match(r.text, /^HTTP\/1\.1 100 Continue\r\n\r\n/, r.text);
    const s = await slow;
    assert.ok(s.ended, 'the gateway closed the connection');
    assert.ok(s.ms >= 9000 && s.ms < 13000, `after ${s.ms} ms`);
    assert.equal(s.text, '', 'without an answer');
});
