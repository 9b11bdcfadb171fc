// The IoT hub (examples/iot_hub.sql): readings by SQL call, send and HTTP POST, the last-1000
// cap, the alert rule (30% off the average of the previous 10; average zero), dashboards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, uid, dcall, sql, lit, post, waitFor, sleep } from './helpers.mjs';

const reading = (site, device, value, extra = {}) =>
    dcall('iot_hub', site, 'reading', { device, value, ...extra });

test('iot_hub: readings arrive by durable.call, durable.send and HTTP POST', async () => {
    const site = uid('it60-site');
    assert.deepEqual(reading(site, 't1', 20.5), { device: 't1', seq: 1, alert: false });
    // send: runs after the sending transaction commits, never if it rolls back
    sql(`BEGIN; SELECT durable.send('iot_hub', ${lit(site)}, 'reading', '{"device": "t1", "value": 21}');
         ROLLBACK;
         SELECT durable.send('iot_hub', ${lit(site)}, 'reading', '{"device": "t1", "value": 21.5}');`);
    assert.ok(await waitFor(() => dcall('iot_hub', site, 'history', { device: 't1' }).length === 2));
    const r = await post('iot_hub', site, 'reading', { device: 't1', value: 22, at: '2030-01-01T00:00:00Z' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { result: { device: 't1', seq: 3, alert: false } });
    const h = dcall('iot_hub', site, 'history', { device: 't1' });
    assert.deepEqual(h.map((x) => x.v), [20.5, 21.5, 22]);
    assert.equal(new Date(h[2].at).toISOString(), '2030-01-01T00:00:00.000Z');
    // bad readings: 400 with the SQLSTATE, nothing stored
    const bad = await post('iot_hub', site, 'reading', { device: 't1', value: 'hot' });
    assert.equal(bad.status >= 400 && bad.status < 500, true, `status ${bad.status}`);
    assert.equal(bad.body.error.code, '22023');
    assert.equal((await post('iot_hub', site, 'reading', { value: 1 })).body.error.code, '22023');
    assert.equal(dcall('iot_hub', site, 'history', { device: 't1' }).length, 3);
    // the mirror table has the device
    assert.equal(sql(`SELECT readings || ' ' || last_value FROM iot_devices WHERE site = ${lit(site)} AND device = 't1'`),
                 '3 22');
});

test('iot_hub: only the last 1,000 readings of a device are kept', () => {
    const site = uid('it60-site');
    const batch = (from, n) => ({ readings: Array.from({ length: n }, (_, i) => ({ device: 'cap', value: from + i })) });
    assert.equal(dcall('iot_hub', site, 'batch', batch(1, 600)).count, 600);
    assert.equal(dcall('iot_hub', site, 'batch', batch(601, 405)).count, 405);
    reading(site, 'cap', 1006);
    reading(site, 'other', 1);
    const h = dcall('iot_hub', site, 'history', { device: 'cap', limit: 5000 });
    assert.equal(h.length, 1000);
    assert.equal(h[0].v, 7);
    assert.equal(h[0].seq, 7);
    assert.equal(h[999].v, 1006);
    const dev = dcall('iot_hub', site, 'devices').find((d) => d.device === 'cap');
    assert.equal(dev.readings, 1006);
    assert.deepEqual(dev.recent, [997, 998, 999, 1000, 1001, 1002, 1003, 1004, 1005, 1006]);
    // stored keys: 1000 readings of cap, 1 of other, 2 devices (+ meta/alerts if any)
    const keys = Number(sql(`SELECT keys FROM durable.objects WHERE class = 'iot_hub' AND id = ${lit(site)}`));
    const alerts = dcall('iot_hub', site, 'alerts', { limit: 1000 }).length;
    assert.equal(keys, 1000 + 1 + 2 + (alerts > 0 ? 1 + alerts : 0));
});

test('iot_hub: a reading more than 30% off the average of the previous 10 raises an alert', async (t) => {
    const site = uid('it60-site');
    const dash = open('iot_hub', site);
    t.after(() => dash.close());
    const events = [];
    dash.on('event', (d) => events.push(d));
    await dash.ready();
    for (let i = 0; i < 10; i++) assert.equal(reading(site, 'p1', i % 2 ? 99 : 101).alert, false);
    // average 100: 130 is exactly 30% away (no alert), 131 is more (alert), 69 too
    assert.equal(reading(site, 'p1', 130).alert, false, 'exactly 30%: no alert');
    assert.equal(reading(site, 'p1', 100).alert, false, 'a normal reading: no alert');
    assert.equal(reading(site, 'p1', 140).alert, true, 'more than 30% above');
    for (let i = 0; i < 10; i++) reading(site, 'p2', -50);
    assert.equal(reading(site, 'p2', -70).alert, true, 'negative average: |v - avg| > 0.3 |avg|');
    assert.equal(reading(site, 'p2', -45).alert, false);
    // the first readings of a device never alert, whatever they are
    assert.equal(reading(site, 'p3', 1).alert, false);
    assert.equal(reading(site, 'p3', 1000).alert, false);
    const alerts = dcall('iot_hub', site, 'alerts');
    assert.deepEqual(alerts.map((a) => [a.device, a.value]), [['p1', 140], ['p2', -70]]);
    assert.equal(Number(alerts[0].average), (130 + 100 + 4 * 99 + 4 * 101) / 10);
    assert.equal(sql(`SELECT count(*) FROM iot_alerts WHERE site = ${lit(site)}`), '2');
    // the dashboard saw the readings and the alerts, in order
    assert.ok(await waitFor(() => events.filter((e) => e.type === 'alert').length === 2));
    assert.equal(events[0].type, 'snapshot');
    assert.ok(events.filter((e) => e.type === 'reading').length >= 25);
    const firstAlert = events.findIndex((e) => e.type === 'alert');
    assert.deepEqual([events[firstAlert - 1].type, events[firstAlert - 1].value], ['reading', 140]);
    dash.close();
});

test('iot_hub: an average of zero does not crash; any non-zero reading after it alerts', () => {
    const site = uid('it60-site');
    for (let i = 0; i < 10; i++) assert.equal(reading(site, 'z', 0).alert, false);
    assert.equal(reading(site, 'z', 0).alert, false, 'zero after zeros: no alert');
    assert.equal(reading(site, 'z', 0.001).alert, true, 'non-zero after zeros: alert');
    // -x and +x averaging to zero
    for (let i = 0; i < 10; i++) reading(site, 'w', i % 2 ? 5 : -5);
    assert.equal(reading(site, 'w', 0).alert, false);
    assert.equal(reading(site, 'w', 3).alert, true);
});

test('iot_hub: dashboards get a snapshot, then reading and alert events live; devices can send over a socket', async (t) => {
    const site = uid('it60-site');
    for (let i = 0; i < 10; i++) reading(site, 'd1', 10);
    const dash = open('iot_hub', site);
    t.after(() => dash.close());
    const events = [];
    dash.on('event', (d) => events.push(d));
    assert.ok(await waitFor(() => events.length === 1));
    const snap = events[0];
    assert.equal(snap.type, 'snapshot');
    assert.deepEqual(snap.devices.map((d) => [d.device, d.readings, d.history.length]), [['d1', 10, 10]]);
    // a device socket: readings as fire-and-forget frames; it gets no events itself
    const device = open('iot_hub', site, { role: 'device' });
    t.after(() => device.close());
    const deviceEvents = [];
    device.on('event', (d) => deviceEvents.push(d));
    await device.ready();
    device.send({ type: 'reading', device: 'd1', value: 10.5 });
    device.send({ type: 'reading', device: 'd1', value: 50 });
    assert.ok(await waitFor(() => events.some((e) => e.type === 'alert')), 'the readings of the device socket arrived');
    await post('iot_hub', site, 'reading', { device: 'd2', value: 3 });
    assert.ok(await waitFor(() => events.some((e) => e.type === 'reading' && e.device === 'd2')));
    const live = events.slice(1).map((e) => [e.type, e.device, e.value]);
    assert.deepEqual(live, [['reading', 'd1', 10.5], ['reading', 'd1', 50], ['alert', 'd1', 50], ['reading', 'd2', 3]]);
    await sleep(100);
    assert.equal(deviceEvents.length, 0);
    dash.close();
    device.close();
});

test('iot_hub: one SQL query across every hub (the mirror tables)', () => {
    const a = uid('it60-site');
    const b = uid('it60-site');
    for (const site of [a, b]) {
        for (let i = 0; i < 10; i++) reading(site, 'm', 1);
        reading(site, 'm', 9);
        reading(site, 'quiet', 1);
    }
    const rows = sql(`SELECT site || '/' || device || '=' || count(*) FROM iot_alerts
                       WHERE at > now() - interval '1 hour' AND site IN (${lit(a)}, ${lit(b)})
                       GROUP BY site, device ORDER BY site`);
    assert.deepEqual(rows.split('\n'), [`${a}/m=1`, `${b}/m=1`].sort());
    assert.equal(sql(`SELECT count(*) FROM iot_devices WHERE site IN (${lit(a)}, ${lit(b)})`), '4');
});
