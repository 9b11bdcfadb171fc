// test/ws/fuzz.mjs — a bounded fuzzer of the gateway (run by test/integration/44_fuzz.sh).
//
//   node fuzz.mjs SECONDS SEED
//
// For SECONDS, several attackers at once send random bytes, mutated HTTP requests, mutated and
// random WebSocket frames (after a real upgrade) and hostile JSON (deep, huge, duplicate keys, bad
// escapes, lone surrogates, invalid UTF-8), each on a connection of its own that it then closes
// or drops.  Meanwhile /healthz is fetched twice a second.  Prints TAP lines: the gateway kept its
// pid, /healthz always answered within a second, and a normal client works afterwards.  The class
// it44 (websocket and http) must exist.  SEED makes a run repeatable.
import net from 'node:net';
import { connect, request, gatewayPid, wsFrame, closePayload, RawSocket, objectUrl, sleep, HOST, PORT } from './helpers.mjs';

const seconds = Number(process.argv[2] || 25);
let seed = Number(process.argv[3] || Date.now()) >>> 0 || 1;
const ATTACKERS = 8;

// xorshift32: the same SEED gives the same attacks
function rnd() {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];
const bytes = (n) => Buffer.from([...Array(n)].map(() => int(256)));

// a few mutations of a buffer: flipped bits, inserted or removed bytes, a cut
function mutate(buf) {
    const b = Buffer.from(buf);
    const out = [...b];
    for (let k = 1 + int(4); k > 0; k--) {
        const at = int(out.length + 1);
        switch (int(5)) {
            case 0: if (out.length) out[at % out.length] ^= 1 << int(8); break;
            case 1: out.splice(at, 0, int(256)); break;
            case 2: out.splice(at, 1 + int(8)); break;
            case 3: out.splice(at, 0, ...bytes(int(64))); break;
            default: out.length = Math.min(out.length, at); break;
        }
    }
    return Buffer.from(out);
}

function hostileJson() {
    const deep = 1 + int(200000);
    return pick([
        () => '['.repeat(deep) + ']'.repeat(int(2) ? deep : 0),
        () => '{"a":'.repeat(int(5000)) + '1' + '}'.repeat(int(5000)),
        () => `{"type":"call","id":${'9'.repeat(int(5000))},"method":"echo","args":${'1e'}${int(99999)}}`,
        () => '{"type":"call","id":1,"method":"echo","args":1,"\\u0061rgs":2,"\\u0061rgs":{"x":"\\ud800"}}',
        () => '{"type":"call","method":"\\u0000echo","args":"\\u0000"}',
        () => `{"type":"call","id":"${'x'.repeat(int(100000))}","method":"echo"}`,
        () => '{"type":"call","id":1,"method":"echo","args":"\\uDC00\\uD800"}',
        () => '{"type":"call","id":1,"method":"echo","args":{"s":"\\x"}}',
        () => '{"type":"call","id":1,"method":"$close","args":{}}',
        () => '{"type":"call","id":1,"method":"echo","args":[1,2,' + '"a",'.repeat(int(10000)) + '3]}',
        () => mutate(Buffer.from('{"type":"call","id":1,"method":"echo","args":{"a":[1,"b",null,true,1.5e3]}}')).toString('latin1'),
        () => JSON.stringify({ type: pick(['call', 'other', 1, null]), id: rnd(), method: pick(['echo', 'put', '', 7]),
            args: { n: int(1000) } }),
    ])();
}

// an attack on a connection of its own; resolves when done
function rawTcp(data, linger = 50) {
    return new Promise((resolve) => {
        const s = net.connect(PORT, HOST, () => {
            s.write(data);
            setTimeout(() => (int(2) ? s.end() : s.destroy()), linger);
        });
        s.on('data', () => {});
        s.on('error', () => {});
        s.on('close', resolve);
        setTimeout(() => { s.destroy(); resolve(); }, 3000);
    });
}

const GOOD_HTTP = [
    `GET /healthz HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n\r\n`,
    `POST /objects/it44/f/echo HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"a": 12}`,
    `GET /objects/it44/f HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    `OPTIONS /objects/it44/f/echo HTTP/1.1\r\nHost: x\r\nOrigin: http://a.example\r\n\r\n`,
    `GET /metrics HTTP/1.0\r\n\r\n`,
];

const counts = { attacks: 0, frames: 0, requests: 0, upgradesRefused: 0 };

async function httpAttack() {
    counts.requests++;
    const kind = int(4);
    let text;
    if (kind === 0) text = mutate(Buffer.from(pick(GOOD_HTTP)));
    else if (kind === 1) text = Buffer.from(`${pick(['GET', 'POST', 'PUT', 'CONNECT', 'G\0T', 'OPTIONS', 'X'.repeat(int(40))])} ` +
        `${pick(['/', '/healthz', '/objects/it44/f/echo', '*', `/${'a'.repeat(int(20000))}`, '/%00', '/%', 'x:80'])} ` +
        `${pick(['HTTP/1.1', 'HTTP/1.0', 'HTTP/9.9', 'HTTP/1.1\r\nHost: x', ''])}\r\n` +
        [...Array(int(30))].map(() => `${pick(['Hos', 'Co', 'Content-Length', 'Transfer-Encoding', 'Expect', 'X-Forwarded',
            'Upgrade', 'Connection', 'Origin', 'Content-Type', bytes(8).toString('latin1')])}${pick([':', ' :', ''])} ` +
            `${pick(['0', '-1', '99999999999999999999', 'chunked', 'websocket', 'close', 'upgrade', '100-continue',
                'application/json', bytes(int(40)).toString('latin1')])}\r\n`).join('') + pick(['\r\n', '\n', '']) +
        hostileJson(), 'latin1');
    else if (kind === 2) text = bytes(1 + int(4096));
    else {
        const body = hostileJson();
        text = Buffer.from(`POST /objects/it44/f/echo HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body, 'latin1') + pick([0, 0, 0, -3, 5])}\r\n\r\n${body}` +
            pick(['', '\r\n', pick(GOOD_HTTP)]), 'latin1');
    }
    await rawTcp(text, int(200));
}

function randomFrame() {
    const payload = pick([() => hostileJson(), () => bytes(int(300)), () => '', () => closePayload(int(65536), bytes(int(130)))])();
    const frame = wsFrame(pick([0, 1, 1, 1, 2, 3, 8, 9, 10, 11]), payload, {
        fin: int(4) !== 0, mask: int(10) !== 0, rsv: int(6) === 0 ? int(8) : 0,
        len: int(10) === 0 ? int(1 << 20) : undefined });
    return int(4) === 0 ? mutate(frame) : frame;
}

async function wsAttack() {
    let s;
    try {
        s = await RawSocket.open(objectUrl('it44', pick(['f', 'g', `r${int(50)}`])));
    } catch {
        counts.upgradesRefused++;
        return;
    }
    for (let k = 1 + int(20); k > 0; k--) {
        const f = int(3) === 0 ? randomFrame() : wsFrame(1, hostileJson());
        counts.frames++;
        // in random pieces
        let at = 0;
        while (at < f.length) {
            const n = 1 + int(f.length - at);
            s.sock.write(f.subarray(at, at + n));
            at += n;
        }
        if (int(5) === 0) await sleep(int(20));
    }
    await sleep(int(100));
    if (int(2)) s.send(wsFrame(8, closePayload(1000)));
    await sleep(int(50));
    s.destroy();
}

async function attacker(end) {
    while (Date.now() < end) {
        counts.attacks++;
        await pick([httpAttack, wsAttack, wsAttack])().catch(() => {});
    }
}

const line = (ok, name) => console.log(`${ok ? 'ok' : 'not ok'} - ${name}`);
const pid0 = gatewayPid();
const end = Date.now() + seconds * 1000;
let worst = 0;
let failures = 0;
const probe = (async () => {
    while (Date.now() < end) {
        const t = Date.now();
        const r = await request('GET', '/healthz', { timeout: 1000 }).catch(() => null);
        if (!r || r.status !== 200) failures++;
        worst = Math.max(worst, Date.now() - t);
        await sleep(500);
    }
})();
await Promise.all([...[...Array(ATTACKERS)].map(() => attacker(end)), probe]);
line(true, `fuzz: ${counts.attacks} attacks (${counts.requests} HTTP, ${counts.frames} frames) in ${seconds} s, seed ${process.argv[3]}`);
line(gatewayPid() === pid0 && pid0 !== '', `fuzz: the gateway kept its pid (${pid0}, now ${gatewayPid()})`);
line(failures === 0 && worst < 1000, `fuzz: /healthz answered within a second all along (worst ${worst} ms, ${failures} failed)`);
const c = await connect('it44', 'after').catch(() => null);
const r = c && await c.call('echo', { after: 'fuzz' }).catch(() => null);
const h = await request('POST', '/objects/it44/after/echo', { body: '{"x": 1}',
    headers: { 'content-type': 'application/json', 'content-length': 8 } }).catch(() => null);
line(r?.type === 'reply' && h?.status === 200, 'fuzz: a normal client works afterwards (WebSocket and HTTP)');
c?.ws.terminate();
process.exit(0);
