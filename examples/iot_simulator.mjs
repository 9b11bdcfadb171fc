#!/usr/bin/env node
// iot_simulator.mjs — feeds the IoT hubs of examples/iot_hub.sql with made-up sensor readings
// over HTTP POST (no dependencies; Node 18+).  Started by `make demo`; stop it with Ctrl-C.
//
//   node examples/iot_simulator.mjs [--url http://127.0.0.1:7432] [--sites plant-1,plant-2,warehouse]
//                                   [--interval 1000] [--spike 0.02]
//
// Every interval each site posts one batch (POST /objects/iot_hub/{site}/batch) with a reading
// of each of its devices: a random walk around the device's level, now and then (probability
// --spike per reading) a jump of 40-80% that the hub reports as an alert.
const opts = { url: 'http://127.0.0.1:7432', sites: 'plant-1,plant-2,warehouse', interval: '1000', spike: '0.02' };
for (let i = 2; i < process.argv.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(process.argv[i]);
    if (!m || !(m[1] in opts)) {
        console.error(`usage: iot_simulator.mjs [--url U] [--sites a,b] [--interval ms] [--spike p] (bad: ${process.argv[i]})`);
        process.exit(2);
    }
    opts[m[1]] = m[2] ?? process.argv[++i];
}
const interval = Number(opts.interval);
const spike = Number(opts.spike);
const kinds = [
    { device: 'temp-1', level: 21, noise: 0.3, digits: 1 },
    { device: 'temp-2', level: 68, noise: 0.8, digits: 1 },
    { device: 'humidity', level: 45, noise: 1.0, digits: 0 },
    { device: 'power-kw', level: 130, noise: 4, digits: 1 },
];
const sites = opts.sites.split(',').filter(Boolean).map((site, s) => ({
    site,
    devices: kinds.map((k) => ({ ...k, value: k.level * (1 + s * 0.05) })),
}));

let sent = 0;
let failed = 0;
let stopping = false;

async function tick() {
    await Promise.all(sites.map(async ({ site, devices }) => {
        const readings = devices.map((d) => {
            // random walk pulled back to the level
            d.value += (Math.random() - 0.5) * 2 * d.noise + (d.level - d.value) * 0.05;
            let v = d.value;
            if (Math.random() < spike) v *= Math.random() < 0.5 ? 1.4 + Math.random() * 0.4 : 0.6 - Math.random() * 0.2;
            return { device: d.device, value: Number(v.toFixed(d.digits)) };
        });
        try {
            const res = await fetch(`${opts.url}/objects/iot_hub/${encodeURIComponent(site)}/batch`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ readings }),
                signal: AbortSignal.timeout(5000),
            });
            await res.text();
            if (res.ok) sent += readings.length; else failed += 1;
        } catch {
            failed += 1;
        }
    }));
}

async function main() {
    console.log(`iot simulator: ${sites.length} sites x ${kinds.length} devices every ${interval} ms -> ${opts.url}`);
    let last = Date.now();
    while (!stopping) {
        const t0 = Date.now();
        await tick();
        if (Date.now() - last > 60000) {
            console.log(`iot simulator: ${sent} readings sent, ${failed} failed posts`);
            last = Date.now();
        }
        await new Promise((r) => setTimeout(r, Math.max(0, interval - (Date.now() - t0))));
    }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        stopping = true;
        console.log(`iot simulator: stopping (${sent} readings sent)`);
        process.exit(0);
    });
}
main();
