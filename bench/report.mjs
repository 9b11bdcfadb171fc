// bench/report.mjs — helpers of bench/run.sh and the report it writes.
//
//   node report.mjs point KEY=VALUE ... [--out PGBENCH_OUTPUT --log PREFIX]... [--extra FILE]
//        one measurement as a JSON line: the KEY=VALUE pairs (numbers where they look like
//        numbers; a value starting with { is parsed as JSON), plus, from pgbench's outputs (one
//        per repetition), the mean tps, each repetition's tps and the failed transactions; from
//        the per-transaction logs (files PREFIX.*) of all repetitions together, the count, p50,
//        p99, max and average latency in ms; from FILE (lines "calls batches cores-busy
//        hosts-cores", one per repetition) the average batch and CPU use
//   node report.mjs report RESULTS.jsonl MACHINE.json OUTDIR
//        writes OUTDIR/latest.md and OUTDIR/latest.json from the measurements and the machine
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const round = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

function pct(sorted, p) {
    if (sorted.length === 0) return null;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[i];
}

// latencies (µs, third column) of pgbench's per-transaction logs PREFIX.<pid>[.<thread>], added
// to values
function pgbenchLatencies(prefix, values) {
    const dir = path.dirname(prefix);
    const base = path.basename(prefix) + '.';
    for (const f of readdirSync(dir)) {
        if (!f.startsWith(base) || f.endsWith('.out')) continue;
        for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
            const c = line.split(' ');
            if (c.length < 3) continue;
            const us = Number(c[2]);
            if (Number.isFinite(us)) values.push(us);
        }
    }
}

function latencySummary(values) {
    const s = Float64Array.from(values).sort();
    let sum = 0;
    for (const v of s) sum += v;
    return {
        n: s.length,
        p50_ms: round(pct(s, 50) / 1000),
        p99_ms: round(pct(s, 99) / 1000),
        max_ms: round(pct(s, 100) / 1000),
        avg_ms: round(s.length ? sum / s.length / 1000 : null),
    };
}

function pgbenchOutput(file) {
    const text = readFileSync(file, 'utf8');
    const tps = /tps = ([0-9.]+) \(without initial connection time\)/.exec(text);
    const failed = /number of failed transactions: (\d+)/.exec(text);
    const done = /number of transactions actually processed: (\d+)/.exec(text);
    const out = {
        tps: tps ? Number(tps[1]) : null,
        transactions: done ? Number(done[1]) : null,
        failed: failed ? Number(failed[1]) : null,
    };
    if (!tps) out.error = text.split('\n').filter((l) => /error|ERROR|FATAL|abort/.test(l)).slice(0, 3).join(' | ') || 'no tps in pgbench output';
    return out;
}

// one measurement from KEY=VALUE pairs and the repetitions' outputs, logs and counters
function point(args) {
    const rec = {};
    const outs = [];
    const lat = [];
    let logs = 0;
    let extra = null;
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === '--log') { pgbenchLatencies(args[++i], lat); logs++; continue; }
        if (a === '--out') { outs.push(pgbenchOutput(args[++i])); continue; }
        if (a === '--extra') { extra = args[++i]; continue; }
        const eq = a.indexOf('=');
        const k = a.slice(0, eq);
        const v = a.slice(eq + 1);
        if (v.startsWith('{') || v.startsWith('[')) rec[k] = JSON.parse(v);
        else if (v !== '' && Number.isFinite(Number(v))) rec[k] = Number(v);
        else rec[k] = v;
    }
    if (outs.length) {
        const tps = outs.map((o) => o.tps).filter((x) => x !== null);
        rec.tps = tps.length ? round(tps.reduce((a, b) => a + b, 0) / tps.length, 1) : null;
        rec.tps_reps = tps.map((x) => round(x, 1));
        rec.transactions = outs.reduce((a, o) => a + (o.transactions || 0), 0);
        rec.failed = outs.reduce((a, o) => a + (o.failed || 0), 0);
        const errs = outs.filter((o) => o.error).map((o) => o.error);
        if (errs.length) rec.error = errs[0];
    }
    if (logs) Object.assign(rec, latencySummary(lat));
    if (extra && existsSync(extra)) {
        const rows = readFileSync(extra, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').map(Number));
        const calls = rows.reduce((a, r) => a + r[0], 0);
        const batches = rows.reduce((a, r) => a + r[1], 0);
        rec.calls = calls;
        rec.batches = batches;
        if (batches > 0) rec.avg_batch = round(calls / batches, 2);
        rec.machine_busy = round(rows.reduce((a, r) => a + r[2], 0) / rows.length, 2);
        rec.hosts_cpu = round(rows.reduce((a, r) => a + r[3], 0) / rows.length, 2);
        if (rows.every((r) => r.length > 4)) rec.other_cpu = round(rows.reduce((a, r) => a + r[4], 0) / rows.length, 2);
        rec.reruns = rows.reduce((a, r) => a + (r[5] || 0), 0);
        if (rows.every((r) => r.length > 6)) rec.steal_cpu = round(rows.reduce((a, r) => a + r[6], 0) / rows.length, 2);
    }
    process.stdout.write(JSON.stringify(rec) + '\n');
}

// ---------------------------------------------------------------------------------------------
// CPU of the processes that are not ours: other work on the machine makes a figure noisy.
//   others-snap ROOT_PID...    a snapshot of every user process's CPU ticks (itself and its
//                              children's), marking the descendants of the roots as ours
//   others-cores SNAP1 SNAP2   cores used by the other processes between two snapshots

function othersSnap(roots) {
    const procs = {};
    const parent = {};
    for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        let stat;
        try { stat = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const flags = Number(f[6]);
        if (flags & 0x00200000) continue;          // PF_KTHREAD: kernel threads work for everyone
        parent[d] = f[1];
        procs[d] = [Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]), 0, f[1]];
    }
    const rootSet = new Set(roots.map(String));
    for (const pid of Object.keys(procs)) {
        let p = pid;
        for (let i = 0; i < 64 && p && p !== '0'; i++) {
            if (rootSet.has(p)) { procs[pid][1] = 1; break; }
            p = parent[p];
        }
    }
    process.stdout.write(JSON.stringify({ t: Date.now(), procs }) + '\n');
}

function othersCores(a, b) {
    const s0 = JSON.parse(readFileSync(a, 'utf8'));
    const s1 = JSON.parse(readFileSync(b, 'utf8'));
    let ticks = 0;
    for (const [pid, [t, ours]] of Object.entries(s1.procs)) {
        if (ours) continue;
        const before = s0.procs[pid];
        if (before && before[1]) continue;
        ticks += t - (before ? before[0] : 0);
    }
    // a process that ended in between: its whole life went into the cutime of a process that
    // reaped it (its parent, init after a reparenting, or its parent's reaper), but only the
    // part after the first snapshot belongs to the interval
    for (const [pid, [t, ours]] of Object.entries(s0.procs)) {
        if (!ours && !s1.procs[pid]) ticks -= t;
    }
    const wall = (s1.t - s0.t) / 1000;
    const ncpu = readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length || 1;
    process.stdout.write((wall > 0 ? Math.min(ncpu, Math.max(0, ticks / 100 / wall)) : 0).toFixed(2) + '\n');
}

// ---------------------------------------------------------------------------------------------
// the report

const fmt = (x, d = 0) => {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    return Number(x).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};
const ms = (x) => (x === null || x === undefined ? '–' : x < 1 ? fmt(x, 3) : x < 100 ? fmt(x, 2) : fmt(x, 0));
const ratio = (a, b) => (a && b ? round(a / b, 2) : null);
const rx = (r) => (r === null ? '–' : `${fmt(r, 2)}×`);
// cores taken by other processes and by the hypervisor (steal) while a measurement ran
const dist = (r) => (r && (r.other_cpu !== undefined || r.steal_cpu !== undefined)
    ? `${fmt(r.other_cpu || 0, 2)} / ${fmt(r.steal_cpu || 0, 2)}${r.reruns ? ` (${r.reruns} rerun${r.reruns > 1 ? 's' : ''})` : ''}` : '–');

function report(resultsFile, machineFile, outDir) {
    const recs = readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const machine = existsSync(machineFile) ? JSON.parse(readFileSync(machineFile, 'utf8')) : {};
    const find = (q) => recs.find((r) => Object.entries(q).every(([k, v]) => r[k] === v));
    const md = [];
    const targets = [];
    const target = (figure, reference, goal, measured, pass, note) => targets.push({ figure, reference, target: goal, measured, pass, note });

    md.push('# pg_durable_objects benchmark');
    md.push('');
    md.push(`Written by \`make bench\` (bench/run.sh) on ${machine.date || '?'}; ` +
        `pgbench points of ${machine.reps || 1} × ${machine.seconds_per_point || '?'} s (each run next to a run of its baseline, in the order A B B A), ` +
        'one throw-away cluster (shared_buffers 256MB, synchronous_commit on, fsync on, checkpoint_timeout 30min, max_wal_size 8GB, ' +
        'the rest as test/lib.sh sets it: max_connections 120, durable.hosts 2, durable.max_batch 64; durable.max_sockets 11000). ' +
        'Every figure is measured in this run next to its baseline; a ratio > 1 means pg_durable_objects is faster.');
    md.push('');
    md.push('## Machine');
    md.push('');
    md.push('| | |');
    md.push('|---|---|');
    const mrow = (k, v) => { if (v !== undefined && v !== null && v !== '') md.push(`| ${k} | ${v} |`); };
    mrow('CPU', machine.cpu_model);
    mrow('cores', machine.cores);
    mrow('RAM', machine.ram_gib ? `${machine.ram_gib} GiB` : null);
    mrow('kernel', machine.kernel);
    mrow('disk: fdatasync of one 8 kB write (pg_test_fsync -s 1)', machine.fdatasync_ops ? `${fmt(machine.fdatasync_ops)} ops/s (${machine.fdatasync_us} µs)` : null);
    mrow('PostgreSQL', machine.postgres);
    mrow('libwebsockets', machine.lws);
    mrow('Node.js / ws (load generator)', machine.node ? `${machine.node} / ${machine.ws || '?'}` : null);
    mrow('other load on the machine (cores busy, 3 s before / after the run, nothing of the benchmark running)',
        machine.background_busy_before !== undefined && machine.background_busy_before !== null ? `${fmt(machine.background_busy_before, 2)} / ${fmt(machine.background_busy_after, 2)}` : null);
    mrow('git commit', machine.commit);
    mrow('server log', machine.server_log_problems === undefined || machine.server_log_problems === null ? null : `${machine.server_log_problems} ERROR/FATAL/PANIC lines (stops of the knob restarts not counted)`);
    md.push('');

    md.push('Disturbances: this machine is shared. "others" = cores used meanwhile by processes that are not the benchmark\'s, ' +
        '"steal" = cores the hypervisor gave to other VMs. A measurement during which the two together exceeded 0.25 cores was thrown ' +
        'away and repeated (at most twice; the tables say how often).');
    md.push('');

    // ---- figures 1 and 2
    const durabilityFigure = (fig, title, durableSeries, plainSeries, plainNote) => {
        md.push(`## ${title}`);
        md.push('');
        md.push(plainNote);
        md.push('');
        md.push('| objects | clients | durable calls/s | p50 ms | p99 ms | avg batch | plain upserts/s | p50 ms | p99 ms | throughput ratio | p50 ratio (plain/durable) |');
        md.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
        const rows = [];
        for (const objects of [1, 1000]) {
            for (const clients of [1, 8, 32]) {
                const d = find({ fig: fig, series: durableSeries, objects, clients });
                const p = find({ fig: fig, series: plainSeries, objects, clients });
                if (!d && !p) continue;
                const row = {
                    objects, clients,
                    durable: d || null, plain: p || null,
                    throughput_ratio: ratio(d && d.tps, p && p.tps),
                    p50_ratio: ratio(p && p.p50_ms, d && d.p50_ms),
                };
                rows.push(row);
                md.push(`| ${fmt(objects)} | ${clients} | ${fmt(d && d.tps)} | ${ms(d && d.p50_ms)} | ${ms(d && d.p99_ms)} | ` +
                    `${d && d.avg_batch ? fmt(d.avg_batch, 1) : '–'} | ${fmt(p && p.tps)} | ${ms(p && p.p50_ms)} | ${ms(p && p.p99_ms)} | ` +
                    `${rx(row.throughput_ratio)} | ${rx(row.p50_ratio)} |`);
            }
        }
        const errs = recs.filter((r) => r.fig === fig && (r.error || r.failed));
        if (errs.length) {
            md.push('');
            for (const e of errs) md.push(`- ${e.series}, ${e.objects} objects, ${e.clients} clients: ${e.failed || 0} failed transactions ${e.error ? `(${e.error})` : ''}`);
        }
        const cpuRows = rows.filter((r) => r.durable && r.durable.machine_busy !== undefined);
        if (cpuRows.length) {
            md.push('');
            const oth = (x) => (x && x.other_cpu !== undefined ? `, others ${fmt(x.other_cpu, 2)}` : '') +
                (x && x.steal_cpu ? `, steal ${fmt(x.steal_cpu, 2)}` : '');
            md.push('CPU while each point ran, objects/clients: cores busy of ' + (machine.cores || '?') + ' (the host workers\' share; ' +
                'cores used by processes that are not the benchmark\'s, "others"; cores taken by the hypervisor, "steal"): ' +
                cpuRows.map((r) => `${r.objects}/${r.clients}: durable ${fmt(r.durable.machine_busy, 2)} (hosts ${fmt(r.durable.hosts_cpu, 2)}${oth(r.durable)}), ` +
                    `plain ${r.plain ? fmt(r.plain.machine_busy, 2) : '–'}${r.plain ? oth(r.plain).replace(', ', ' (') + (oth(r.plain) ? ')' : '') : ''}`).join('; ') + '.');
            const reruns = rows.reduce((a, r) => a + ((r.durable && r.durable.reruns) || 0) + ((r.plain && r.plain.reruns) || 0), 0);
            if (reruns) md.push(`${reruns} run(s) were thrown away and repeated because other processes and CPU steal took more than 0.25 cores meanwhile.`);
        }
        md.push('');
        return rows;
    };

    const fig1 = durabilityFigure(1, 'Figure 1 — durable increments from SQL (durability sync)', 'durable', 'plain',
        '`pgbench -n -M prepared -T s -c C -j 2`: `SELECT durable.call(\'bench_counter\', id, \'inc\')` ' +
        '(PL/pgSQL: `durable.get(\'n\')`, `durable.put(\'n\', n + 1)`) against the plain ' +
        '`INSERT INTO bench_plain VALUES (id, 1) ON CONFLICT (id) DO UPDATE SET n = bench_plain.n + 1`, ' +
        'synchronous_commit on for both. One object: id `c1`; 1,000 objects: a random id of 1,000 per call. ' +
        'Calls/s: mean of the runs (each run\'s figure in latest.json); latencies: p50/p99 over the `pgbench -l` per-transaction logs of all runs. Avg batch = calls ÷ batches of `durable.hosts` during the runs.');
    const fig2 = durabilityFigure(2, 'Figure 2 — durability async against plain SQL with synchronous_commit off', 'durable_async', 'plain_async',
        'As figure 1, with the class defined `{"durability": "async"}` and the plain upsert run with ' +
        '`PGOPTIONS=\'-c synchronous_commit=off\'`.');

    const f1 = (o, c) => fig1.find((r) => r.objects === o && r.clients === c);
    const f2 = (o, c) => fig2.find((r) => r.objects === o && r.clients === c);
    {
        const r = f1(1, 32);
        const t = r && r.durable ? r.durable.tps : null;
        target('durable increments, 32 clients, one object', 'workerd on disk: 1,200/s', '≥ 10,000/s',
            t === null ? '–' : `${fmt(t)}/s (${rx(r.throughput_ratio)} plain)`, t === null ? null : t >= 10000);
    }
    {
        const r = f1(1000, 32);
        target('durable increments, 32 clients, 1,000 objects', 'plain SQL upsert ≈7,000/s', '≥ 2.0× plain SQL',
            r && r.durable && r.plain ? `${fmt(r.durable.tps)}/s vs ${fmt(r.plain.tps)}/s = ${rx(r.throughput_ratio)}` : '–',
            r && r.throughput_ratio !== null ? r.throughput_ratio >= 2.0 : null);
    }
    {
        const r = f2(1000, 32);
        target('async-durability increments, 32 clients, 1,000 objects', 'plain SQL, synchronous_commit off: 13–16k/s', '≥ 1.0× plain SQL',
            r && r.durable && r.plain ? `${fmt(r.durable.tps)}/s vs ${fmt(r.plain.tps)}/s = ${rx(r.throughput_ratio)}` : '–',
            r && r.throughput_ratio !== null ? r.throughput_ratio >= 1.0 : null);
    }

    // ---- knobs
    const knobs = recs.filter((r) => r.fig === 'knob');
    if (knobs.length) {
        md.push('## Tuning knobs (figure 1, sync, 32 clients)');
        md.push('');
        md.push('Each row changes one setting from the defaults (durable.hosts 2, durable.max_batch 64); run after the figures on the same cluster (durable.hosts needs a restart).');
        md.push('');
        md.push('| setting | objects | durable calls/s | p50 ms | p99 ms | avg batch | cores busy | hosts\' cores | others / steal cores |');
        md.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
        for (const k of knobs) {
            md.push(`| ${k.setting} | ${fmt(k.objects)} | ${fmt(k.tps)} | ${ms(k.p50_ms)} | ${ms(k.p99_ms)} | ${k.avg_batch ? fmt(k.avg_batch, 1) : '–'} | ${fmt(k.machine_busy, 2)} | ${fmt(k.hosts_cpu, 2)} | ${dist(k)} |`);
        }
        md.push('');
    }

    // ---- figure 3
    const rt = find({ fig: 3, series: 'durable' });
    const s1 = find({ fig: 3, series: 'select1' });
    const loop = find({ fig: 3, series: 'in_session' });
    const f3 = { durable: rt || null, select1: s1 || null, in_session: loop || null };
    if (rt || s1 || loop) {
        md.push('## Figure 3 — round trip of an empty call, one session');
        md.push('');
        md.push('`pgbench -n -M prepared -c 1 -t 10000`: `SELECT durable.call(\'bench_echo\', \'e1\', \'echo\', \'{"a": 1}\')` ' +
            '(a PL/pgSQL handler returning its args, no storage) against `SELECT 1`. In session: the same call 10,000 times ' +
            'in one DO block, each timed with clock_timestamp() — the way the prototype\'s ≈94 µs was measured (no client round trip).');
        md.push('');
        md.push('| | p50 µs | p99 µs | avg µs | calls/s | others / steal cores |');
        md.push('|---|---:|---:|---:|---:|---:|');
        const us = (x) => (x === null || x === undefined ? '–' : fmt(x * 1000, 0));
        if (rt) md.push(`| durable.call via pgbench | ${us(rt.p50_ms)} | ${us(rt.p99_ms)} | ${us(rt.avg_ms)} | ${fmt(rt.tps)} | ${dist(rt)} |`);
        if (s1) md.push(`| SELECT 1 via pgbench (baseline) | ${us(s1.p50_ms)} | ${us(s1.p99_ms)} | ${us(s1.avg_ms)} | ${fmt(s1.tps)} | ${dist(s1)} |`);
        if (rt && s1) md.push(`| durable.call − SELECT 1 | ${us(rt.p50_ms - s1.p50_ms)} | ${us(rt.p99_ms - s1.p99_ms)} | ${us(rt.avg_ms - s1.avg_ms)} | ratio ${rx(ratio(rt.tps, s1.tps))} | |`);
        if (loop) md.push(`| durable.call in session (DO loop) | ${us(loop.p50_ms)} | ${us(loop.p99_ms)} | ${us(loop.avg_ms)} | ${loop.avg_ms ? fmt(1000 / loop.avg_ms) : '–'} | ${dist(loop)} |`);
        md.push('');
        if (loop) {
            target('empty call round trip, one session (in session, as the prototype)', 'prototype: ≈94 µs p50', 'p50 ≤ 100 µs',
                `${us(loop.p50_ms)} µs p50, ${us(loop.p99_ms)} µs p99`, loop.p50_ms <= 0.1);
        }
        if (rt) {
            target('empty call round trip, one session (pgbench, with the client round trip)', 'SELECT 1 in the same run: ' + (s1 ? `${us(s1.p50_ms)} µs p50` : '–'), 'p50 ≤ 100 µs',
                `${us(rt.p50_ms)} µs p50, ${us(rt.p99_ms)} µs p99`, rt.p50_ms <= 0.1);
        }
    }

    // ---- figure 4
    // client 'ws' (or none): bench/ws_bench.mjs with the npm package ws; 'raw': the same with a
    // bare net.Socket; 'c': the C epoll client bench/ws_fanout.c
    const ws = {
        rtt: find({ fig: 4, series: 'rtt' }),
        floor: recs.find((r) => r.fig === 4 && r.series === 'floor' && r.client !== 'c'),
        room100: recs.find((r) => r.fig === 4 && r.series === 'room' && r.sockets === 100 && r.client !== 'raw' && r.client !== 'c'),
        room100raw: recs.find((r) => r.fig === 4 && r.series === 'room' && r.sockets === 100 && r.client === 'raw'),
        roomBig: recs.find((r) => r.fig === 4 && r.series === 'room' && r.sockets !== 100 && r.client !== 'c'),
        room100c: recs.find((r) => r.fig === 4 && r.series === 'room' && r.sockets === 100 && r.client === 'c'),
        roomBigC: recs.find((r) => r.fig === 4 && r.series === 'room' && r.sockets !== 100 && r.client === 'c'),
        floorC: recs.find((r) => r.fig === 4 && r.series === 'floor' && r.sockets === 100 && r.client === 'c'),
        floorBigC: recs.find((r) => r.fig === 4 && r.series === 'floor' && r.sockets !== 100 && r.client === 'c'),
    };
    if (ws.rtt || ws.room100 || ws.roomBig) {
        md.push('## Figure 4 — WebSocket');
        md.push('');
        md.push('Load generators, one process each, on the same ' + (machine.cores || '?') + ' cores as the server: bench/ws_bench.mjs (Node.js, npm package `ws`) ' +
            'and, for the rooms, the C epoll client bench/ws_fanout.c (libc only: non-blocking sockets, one epoll loop, a frame parser that looks at ' +
            'the bytes it needs; same calls, frames and figures), which costs a fraction of the CPU per received frame. Round trip: sequential `{"type":"call"}` frames to a PL/pgSQL `echo` over one socket. Room: N sockets on one object; ' +
            'one of them sends a call whose handler does `durable.broadcast(...)`; the time runs from sending the call until all N sockets ' +
            'got the event. Flood: calls of several broadcasts each kept in flight; deliveries = events received by all sockets per second. ' +
            'Memory: gateway VmRSS before and after opening the sockets, ÷ sockets. CPU columns, during the phase: the client\'s event loop ' +
            'busy share (Node\'s eventLoopUtilization, for the C client the share of the phase not spent in epoll_wait: 1.00 = saturated), the client\'s, the gateway\'s and the hosts\' CPU in cores, and the cores ' +
            'busy on the whole machine (of ' + (machine.cores || '?') + ').');
        md.push('');
        md.push('| measurement | p50 ms | p99 ms | rate | client loop busy | client CPU | gateway CPU | hosts CPU | machine busy | others / steal cores | workerd reference |');
        md.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
        const c = (x) => (x === undefined || x === null ? '–' : fmt(x, 2));
        const cpuCols = (u) => (u ? `${c(u.client_loop_busy)} | ${c(u.client_cpu)} | ${c(u.gateway_cpu)} | ${c(u.hosts_cpu)} | ${c(u.machine_busy)}` : '– | – | – | – | –');
        if (ws.rtt && !ws.rtt.error) {
            md.push(`| call round trip, one socket (${fmt(ws.rtt.n)} calls) | ${ms(ws.rtt.p50_ms)} | ${ms(ws.rtt.p99_ms)} | ${fmt(ws.rtt.calls_per_s)} calls/s | ${cpuCols(ws.rtt.cpu)} | ${dist(ws.rtt)} | p50 0.88, p99 2.66 |`);
        }
        for (const [room, refs, label] of [[ws.room100, ['p50 3.0, p99 8.8', '29,400/s'], ''], [ws.room100c, ['p50 3.0, p99 8.8', '29,400/s'], ', C epoll client'],
            [ws.room100raw, ['', ''], ', raw-socket client'], [ws.roomBig, ['–', '–'], ''], [ws.roomBigC, ['–', '–'], ', C epoll client']]) {
            if (!room) continue;
            if (room.error) { md.push(`| room of ${fmt(room.sockets)}${label}: failed: ${room.error} | | | | | | | | | | |`); continue; }
            const f = room.fanout || {};
            const fl = room.flood || {};
            md.push(`| room of ${fmt(room.sockets_open)}${label}: one broadcast until all got it (${fmt(f.n)} broadcasts${f.timeouts ? `, ${f.timeouts} timed out` : ''}) | ${ms(f.p50_ms)} | ${ms(f.p99_ms)} | | ${cpuCols(f.cpu)} | ${dist(room)} | ${refs[0]} |`);
            md.push(`| room of ${fmt(room.sockets_open)}${label}: flood | | | ${fmt(fl.deliveries_per_s)} deliveries/s (${fmt(fl.broadcasts_per_s)} broadcasts/s) | ${cpuCols(fl.cpu)} | | ${refs[1]} |`);
        }
        if (ws.floor && !ws.floor.error) {
            md.push(`| floor: the same client against a trivial local server, round trip | ${ms(ws.floor.rtt.p50_ms)} | ${ms(ws.floor.rtt.p99_ms)} | ${fmt(ws.floor.rtt.calls_per_s)} calls/s | ${cpuCols(ws.floor.rtt.cpu)} | ${dist(ws.floor)} | |`);
            md.push(`| floor: ${fmt(ws.floor.flood.sockets)} sockets receiving bulk-written frames | | | ${fmt(ws.floor.flood.deliveries_per_s)} deliveries/s | ${cpuCols(ws.floor.flood.cpu)} | | |`);
        }
        for (const fc of [ws.floorC, ws.floorBigC]) {
            if (!fc) continue;
            if (fc.error) { md.push(`| floor, C client, ${fmt(fc.sockets)} sockets: failed: ${fc.error} | | | | | | | | | | |`); continue; }
            const f = fc.fanout || {};
            const fl = fc.flood || {};
            md.push(`| floor, C client against a trivial C server (${fc.bulk ? 'the frames of a call to a socket in one write()' : 'one write() per frame'}; its CPU in the gateway column), ${fmt(fc.sockets_open)} sockets: one broadcast until all got it | ${ms(f.p50_ms)} | ${ms(f.p99_ms)} | | ${cpuCols(f.cpu)} | ${dist(fc)} | |`);
            md.push(`| floor, C client, ${fmt(fc.sockets_open)} sockets: flood | | | ${fmt(fl.deliveries_per_s)} deliveries/s | ${cpuCols(fl.cpu)} | | |`);
        }
        md.push('');
        const mem = ws.roomBig && ws.roomBig.kib_per_socket !== undefined ? ws.roomBig : ws.room100;
        if (mem && mem.kib_per_socket !== undefined) {
            md.push(`Memory per idle socket: gateway VmRSS ${fmt(mem.gateway_rss_kib_before)} KiB → ${fmt(mem.gateway_rss_kib_after)} KiB with ${fmt(mem.sockets_open)} open sockets = **${fmt(mem.kib_per_socket, 2)} KiB per socket**` +
                ` (opening them took ${mem.open ? mem.open.seconds : '?'} s: each runs \`$connect\` on a host).`);
            md.push('');
        }
        for (const room of [ws.room100, ws.room100c, ws.room100raw, ws.roomBig, ws.roomBigC]) {
            if (room && room.flood && !room.error) {
                const fl = room.flood;
                md.push(`- Flood in the room of ${fmt(room.sockets_open)}${room.client === 'raw' ? ' (raw-socket client)' : room.client === 'c' ? ' (C epoll client)' : ''}: ${fmt(fl.broadcasts_sent)} broadcasts sent, ${fmt(fl.deliveries_total)} of ${fmt(fl.deliveries_expected)} expected deliveries arrived, ${fl.sockets_closed} sockets closed, ${fl.call_errors} call errors.`);
            }
        }
        md.push('');
        md.push('**Is the client the bottleneck?** The floor rows run the same client code against a trivial local server (`ws_bench.mjs floor`: a Node ' +
            'process that answers call frames at once and, for the flood, writes pre-serialised event frames in bulk): the client takes far more ' +
            'deliveries per second than the gateway produced. Against the gateway, which writes one frame per write(), the client pays one read per ' +
            'frame, so its CPU share is higher per delivery; the rows with the raw-socket client (a bare net.Socket and a 30-line frame parser instead of `ws`) ' +
            'show how much of the figure is the `ws` package. The C epoll client (bench/ws_fanout.c) pays a few µs of CPU per frame, ' +
            'mostly in the kernel: against the gateway its loop is idle (in epoll_wait) for much of each phase ("client loop busy" well below 1) while the gateway ' +
            'is the busier process. Its floor rows run it against a trivial C server that it forks (in the fan-out one write() per socket, as the gateway writes; ' +
            'in the flood the frames of a call to a socket in one write()): what one core writing frame by frame gives on this machine, a bound for any ' +
            'single-threaded server. The targets table uses the C client\'s figures for the rooms. Under the floods the gateway is the process near one full core, and the machine\'s ' +
            (machine.cores || '?') + ' cores are shared by the client, the gateway and the hosts.');
        md.push('');
        if (ws.rtt && !ws.rtt.error) {
            target('WebSocket call round trip', 'workerd: p50 0.88 ms, p99 2.66 ms', 'p50 ≤ 0.4 ms, p99 ≤ 1.5 ms',
                `p50 ${ms(ws.rtt.p50_ms)} ms, p99 ${ms(ws.rtt.p99_ms)} ms`, ws.rtt.p50_ms <= 0.4 && ws.rtt.p99_ms <= 1.5);
        }
        // the rooms' targets: the C epoll client's figures where it ran, else the Node client's
        const usable = (r) => r && !r.error && r.fanout && r.flood;
        const room100 = usable(ws.room100c) ? ws.room100c : ws.room100;
        const roomBig = usable(ws.roomBigC) ? ws.roomBigC : ws.roomBig;
        const who = (r) => (r && r.client === 'c' ? 'C epoll client: ' : 'Node ws client: ');
        // the other clients' figures, in brackets
        const others = (...pairs) => {
            const t = pairs.filter(([, r]) => r && r !== room100 && r !== roomBig && !r.error && r.fanout && r.fanout.p50_ms !== undefined)
                .map(([label, r]) => `${label}: p50 ${ms(r.fanout.p50_ms)}, p99 ${ms(r.fanout.p99_ms)}`);
            return t.length ? ` (${t.join('; ')})` : '';
        };
        if (room100 && room100.fanout) {
            const f = room100.fanout;
            target('100-socket room, one broadcast to all', 'workerd: p50 3.0 ms, p99 8.8 ms', 'p99 ≤ 4 ms',
                `${who(room100)}p50 ${ms(f.p50_ms)} ms, p99 ${ms(f.p99_ms)} ms` +
                others(['Node ws client', ws.room100], ['raw-socket Node client', ws.room100raw], ['C client against a trivial C server', ws.floorC]),
                f.p99_ms <= 4 && !f.timeouts);
            const fl = room100.flood;
            if (fl) {
                target('deliveries per second, one room (100 sockets)', 'workerd: 29,400/s', '≥ 300,000/s',
                    `${who(room100)}${fmt(fl.deliveries_per_s)}/s (gateway ${c(fl.cpu && fl.cpu.gateway_cpu)} cores, client ${c(fl.cpu && fl.cpu.client_cpu)})` +
                    (room100 === ws.room100c && ws.room100 && ws.room100.flood ? ` (Node ws client: ${fmt(ws.room100.flood.deliveries_per_s)}/s)` : ''),
                    fl.deliveries_per_s >= 300000);
            }
        }
        if (roomBig && roomBig.fanout) {
            const f = roomBig.fanout;
            target(`${fmt(roomBig.sockets_open)}-socket room, one broadcast to all`, '–', 'p99 ≤ 60 ms',
                `${who(roomBig)}p50 ${ms(f.p50_ms)} ms, p99 ${ms(f.p99_ms)} ms (flood: ${fmt(roomBig.flood && roomBig.flood.deliveries_per_s)} deliveries/s, gateway ${c(f.cpu && f.cpu.gateway_cpu)} cores)` +
                others(['Node ws client', ws.roomBig], ['C client against a trivial C server', ws.floorBigC]),
                f.p99_ms <= 60 && !f.timeouts && roomBig.sockets_open >= 10000,
                roomBig.sockets_open < 10000 ? `only ${roomBig.sockets_open} sockets opened` : undefined);
        }
        if (mem && mem.kib_per_socket !== undefined) {
            target('memory per idle socket', '–', '≤ 16 KiB', `${fmt(mem.kib_per_socket, 2)} KiB (${fmt(mem.sockets_open)} sockets)`, mem.kib_per_socket <= 16);
        }
    }

    // ---- figure 5
    const al = find({ fig: 5 });
    if (al) {
        md.push('## Figure 5 — alarms');
        md.push('');
        md.push(`${fmt(al.alarms)} alarms on ${fmt(al.objects)} objects, due evenly over ${al.spread_s} s; the \`$alarm\` handler inserts ` +
            '`clock_timestamp()` next to `scheduled_at` into a table; lateness = the difference.');
        md.push('');
        md.push('| alarms ran | p50 ms | p99 ms | max ms | min ms | retried | others / steal cores | workerd reference |');
        md.push('|---:|---:|---:|---:|---:|---:|---:|---|');
        md.push(`| ${fmt(al.ran)} of ${fmt(al.alarms)} | ${ms(al.p50_ms)} | ${ms(al.p99_ms)} | ${ms(al.max_ms)} | ${ms(al.min_ms)} | ${fmt(al.retried)} | ${dist(al)} | p50 1 ms, worst 6 ms |`);
        md.push('');
        target('alarm lateness', 'workerd: p50 1 ms, worst 6 ms', 'p99 ≤ 5 ms',
            `p50 ${ms(al.p50_ms)} ms, p99 ${ms(al.p99_ms)} ms (${al.ran} of ${al.alarms} ran)`, al.ran === al.alarms && al.p99_ms <= 5 && al.min_ms >= 0);
    }

    // ---- figure 6
    const f6 = {};
    for (const d of ['sync', 'async']) {
        f6[d] = {
            http: find({ fig: 6, series: 'http', durability: d }) || null,
            ws: find({ fig: 6, series: 'ws', durability: d }) || null,
            plain: find({ fig: 6, series: 'plain', durability: d }) || null,
        };
    }
    if (f6.sync.http || f6.sync.plain || f6.async.http) {
        md.push('## Figure 6 — durable increments through the gateway');
        md.push('');
        md.push('The counter of figure 1 (classes `bench_counter_web`, `bench_counter_web_async`) called through the gateway by ' +
            'the C client bench/ws_fanout.c: **HTTP**, `POST /objects/CLASS/cN/inc` on 32 keep-alive connections, one request in ' +
            'flight on each, N random of 1,000; **WebSocket**, call frames `{"type":"call","method":"inc"}` on 1,000 sockets (one per ' +
            'object), 32 calls in flight in all, each sent on the socket of a random object. Baseline: the plain upsert of figure 1 by ' +
            'pgbench with 32 clients (async: `synchronous_commit = off`), its runs alternating with the gateway\'s (A B B A). ' +
            'Calls/s and p50/p99: means over the runs. CPU per call: µs of one core per call, from the cores each process used ' +
            '(gateway, hosts, the load generator) and all cores busy less those of processes that are not the benchmark\'s ' +
            '("rest": the server\'s other processes — WAL writer, checkpointer, the backends of pgbench\'s baseline — and the kernel\'s ' +
            'network and disk work).');
        md.push('');
        md.push('| durability | path | calls/s | p50 ms | p99 ms | plain upserts/s | p50 ms | p99 ms | throughput ratio | CPU µs/call: all | gateway | hosts | client | rest | errors | others / steal cores |');
        md.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
        for (const d of ['sync', 'async']) {
            const p = f6[d].plain;
            for (const via of ['http', 'ws']) {
                const r = f6[d][via];
                if (!r) continue;
                if (r.error) { md.push(`| ${d} | ${via} | error: ${r.error} | | | | | | | | | | | | | |`); continue; }
                const u = r.us_per_call || {};
                md.push(`| ${d} | ${via === 'http' ? 'HTTP' : 'WebSocket'} | ${fmt(r.tps)} | ${ms(r.p50_ms)} | ${ms(r.p99_ms)} | ` +
                    `${fmt(p && p.tps)} | ${ms(p && p.p50_ms)} | ${ms(p && p.p99_ms)} | ${rx(ratio(r.tps, p && p.tps))} | ` +
                    `${fmt(u.all, 1)} | ${fmt(u.gateway, 1)} | ${fmt(u.hosts, 1)} | ${fmt(u.client, 1)} | ${fmt(u.rest, 1)} | ${fmt(r.errors)} | ${dist(r)} |`);
            }
            if (p) {
                const per = p.machine_busy && p.tps ? fmt(Math.max(0, p.machine_busy - (p.other_cpu || 0)) / p.tps * 1e6, 1) : '–';
                md.push(`| ${d} | plain upsert (pgbench) | ${fmt(p.tps)} | ${ms(p.p50_ms)} | ${ms(p.p99_ms)} | | | | | ${per} | | | | | ${fmt(p.failed || 0)} | ${dist(p)} |`);
            }
        }
        md.push('');
        const t6 = (d, via, goal, min) => {
            const r = f6[d][via];
            const p = f6[d].plain;
            const rr = r && !r.error && p ? ratio(r.tps, p.tps) : null;
            target(`durable increments through the gateway (${via === 'http' ? 'HTTP' : 'WebSocket'}, ${d}), 32 in flight, 1,000 objects`,
                `plain SQL upsert, 32 pgbench clients${d === 'async' ? ', synchronous_commit off' : ''}`, goal,
                rr === null ? (r && r.error ? `error: ${r.error}` : '–') : `${fmt(r.tps)}/s vs ${fmt(p.tps)}/s = ${rx(rr)}`,
                rr === null ? null : rr >= min && !r.errors);
        };
        t6('sync', 'http', '≥ 2.0× plain SQL', 2.0);
        t6('sync', 'ws', '≥ 2.0× plain SQL', 2.0);
        t6('async', 'http', '≥ 1.0× plain SQL', 1.0);
    }

    // ---- targets first in the document: put them after the machine
    const tmd = [];
    tmd.push('## Targets (issues 6 and 18)');
    tmd.push('');
    tmd.push('| figure | reference | target | measured in this run | result |');
    tmd.push('|---|---|---|---|---|');
    for (const t of targets) {
        tmd.push(`| ${t.figure} | ${t.reference} | ${t.target} | ${t.measured} | ${t.pass === null ? '–' : t.pass ? '**pass**' : '**FAIL**'}${t.note ? ` (${t.note})` : ''} |`);
    }
    const passed = targets.filter((t) => t.pass).length;
    tmd.push('');
    tmd.push(`${passed} of ${targets.length} targets pass.`);
    tmd.push('');
    const at = md.findIndex((l) => l.startsWith('## Figure 1'));
    md.splice(at < 0 ? md.length : at, 0, ...tmd);

    writeFileSync(path.join(outDir, 'latest.md'), md.join('\n') + '\n');
    writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify({
        machine,
        targets,
        figures: {
            1: fig1,
            2: fig2,
            3: f3,
            4: ws,
            5: al || null,
            6: f6,
            knobs,
        },
        measurements: recs,
    }, null, 2) + '\n');
}

// the runs of one figure-6 series (ws_fanout calls-* JSON lines) as one record: the mean of
// calls/s and of the runs' p50/p99, the mean CPU shares, and the CPU per call (µs of one core)
function calls(args) {
    const [file, ...pairs] = args;
    const runs = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
    const rec = {};
    for (const a of pairs) {
        const eq = a.indexOf('=');
        const v = a.slice(eq + 1);
        rec[a.slice(0, eq)] = v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
    }
    const good = runs.filter((r) => !r.error && r.calls_per_s > 0);
    const mean = (f) => { const xs = good.map(f).filter((x) => x !== undefined && x !== null); return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null; };
    if (!good.length) {
        rec.error = (runs.find((r) => r.error) || {}).error || 'no run';
        process.stdout.write(JSON.stringify(rec) + '\n');
        return;
    }
    Object.assign(rec, {
        connections: good[0].connections, objects: good[0].objects, class: good[0].class,
        tps: round(mean((r) => r.calls_per_s), 1), tps_reps: good.map((r) => round(r.calls_per_s, 1)),
        p50_ms: round(mean((r) => r.p50_ms), 3), p99_ms: round(mean((r) => r.p99_ms), 3),
        errors: runs.reduce((a, r) => a + (r.errors || 0), 0),
        other_cpu: round(mean((r) => r.other_cpu), 2), steal_cpu: round(mean((r) => r.steal_cpu), 2),
        reruns: runs.reduce((a, r) => a + (r.reruns || 0), 0),
    });
    const cpu = {};
    for (const k of ['machine_busy', 'gateway_cpu', 'hosts_cpu', 'client_cpu']) cpu[k] = round(mean((r) => r.cpu && r.cpu[k]), 2);
    rec.cpu = cpu;
    // µs of CPU per call: each share (cores) divided by calls per µs; "all" leaves out the
    // cores other processes on the machine used meanwhile (other_cpu)
    const per = (x) => (x === null || !rec.tps ? null : round(x / rec.tps * 1e6, 1));
    const ours = cpu.machine_busy === null ? null : Math.max(0, cpu.machine_busy - (rec.other_cpu || 0));
    rec.us_per_call = {
        all: per(ours), gateway: per(cpu.gateway_cpu), hosts: per(cpu.hosts_cpu), client: per(cpu.client_cpu),
        rest: per(ours === null ? null : Math.max(0, ours - (cpu.gateway_cpu || 0) - (cpu.hosts_cpu || 0) - (cpu.client_cpu || 0))),
    };
    process.stdout.write(JSON.stringify(rec) + '\n');
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'point') point(rest);
else if (cmd === 'calls') calls(rest);
else if (cmd === 'merge') {      // merge JSON KEY=VALUE...: the JSON object with the pairs added
    const r = JSON.parse(rest[0]);
    const add = {};
    for (const a of rest.slice(1)) {
        const eq = a.indexOf('=');
        const v = a.slice(eq + 1);
        add[a.slice(0, eq)] = v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
    }
    process.stdout.write(JSON.stringify({ ...add, ...r, ...add }) + '\n');
}
else if (cmd === 'others-snap') othersSnap(rest);
else if (cmd === 'others-cores') othersCores(...rest);
else if (cmd === 'report') report(...rest);
else {
    process.stderr.write('usage: node report.mjs point KEY=VALUE ... | report RESULTS.jsonl MACHINE.json OUTDIR\n');
    process.exit(2);
}
