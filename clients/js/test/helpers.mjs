// Helpers of the client's tests (clients/js/test/*.test.mjs, run by test/integration/50_js_client.sh):
// the ws package of test/ws, psql, polling, and a gateway restart with work done while it is down.
// Env: PGHOST, PGPORT, PGDATA (psql, the postmaster's pid), TEST_ROOT.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.TEST_ROOT}/test/ws/package.json`);
export const WebSocket = require('ws');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** psql -X -At -c query: its output, trimmed. */
export const sql = (q) => execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', q], { encoding: 'utf8' }).trim();

/** Poll pred until it is truthy; false after ms. */
export async function waitFor(pred, ms = 10000) {
    const end = Date.now() + ms;
    while (Date.now() < end) { if (await pred()) return true; await sleep(50); }
    return false;
}

const health = async (port) => {
    try { return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200; } catch { return false; }
};

/** The pid of this cluster's gateway: a child of its postmaster. */
export function gatewayPid() {
    const postmaster = readFileSync(`${process.env.PGDATA}/postmaster.pid`, 'utf8').split('\n')[0];
    return Number(execFileSync('pgrep', ['-P', postmaster, '-f', 'pg_durable_objects gateway'], { encoding: 'utf8' })
        .trim().split('\n')[0]);
}

/**
 * Stop the gateway (SIGTERM; the postmaster starts a new one a second later), run during()
 * while it is down (it must not take that second), and wait until the new one serves.
 */
export async function restartGateway(during = async () => {}) {
    const port = process.env.DURABLE_PORT;
    const old = gatewayPid();
    process.kill(old, 'SIGTERM');
    if (!await waitFor(async () => !await health(port), 5000)) throw new Error('the gateway did not stop');
    await during();
    if (!await waitFor(async () => await health(port) && gatewayPid() !== old, 30000)) {
        throw new Error('the gateway did not come back');
    }
}
