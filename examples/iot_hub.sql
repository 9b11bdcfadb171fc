-- examples/iot_hub.sql — an IoT aggregation hub: one object per site.
--
-- Devices report readings ({"device": "t1", "value": 21.5, "at": "...optional..."}) by SQL
-- (durable.call, or durable.send from a trigger or a batch job), by HTTP POST, or over a
-- WebSocket.  The hub keeps the last 1,000 readings of each device, raises an alert when a
-- reading deviates more than 30% from the average of the device's previous 10 readings, and
-- streams readings and alerts to the dashboards connected to it (examples/web/dashboard.html).
-- Alerts and the latest state of every device are also mirrored into two ordinary tables,
-- iot_alerts and iot_devices, in the same transaction as the hub's own state, so one SQL query
-- sees every hub at once.  See docs/examples/iot_hub.md.
--
--   SELECT durable.call('iot_hub', 'plant-1', 'reading', '{"device": "t1", "value": 21.5}');
--   SELECT durable.send('iot_hub', 'plant-1', 'reading', '{"device": "t1", "value": 21.7}');
--   curl -H 'Content-Type: application/json' -d '{"device": "t1", "value": 22}' http://127.0.0.1:7432/objects/iot_hub/plant-1/reading
--   ws://127.0.0.1:7432/objects/iot_hub/plant-1        (events: snapshot, reading, alert)
--
-- The alert rule, for a reading v of a device that has at least 10 earlier readings, with avg
-- the average of the 10 readings just before it:
--   avg <> 0:  alert when |v - avg| > 0.3 * |avg|        (more than 30% away, either way)
--   avg =  0:  alert when v <> 0                          (any departure from a flat zero)
-- A device's first 10 readings never alert (there is no average of 10 yet).
--
-- Storage of a hub object:
--   dev:{device}             {"readings": n, "seq": n, "last": v, "last_at": t, "recent": [<= 10 values], "alerts": n}
--   r:{device}:{seq, 12 digits}  {"v": value, "at": time}       (the last 1,000 per device)
--   alert:{seq, 12 digits}   {"device", "value", "average", "at", "seq"}   (the last 1,000 of the hub)
--   meta                     {"alerts": n}
-- Re-running this file replaces the functions and the class; hubs and tables are kept.

-- Mirrors of the hubs' state, written only by the hub handler (in the hub's own transaction).
CREATE TABLE IF NOT EXISTS iot_devices (
    site          text NOT NULL,
    device        text NOT NULL,
    readings      bigint NOT NULL,
    last_value    numeric NOT NULL,
    last_at       timestamptz NOT NULL,
    average       numeric,                  -- of the last 10 readings (NULL before there are 10)
    alerts        bigint NOT NULL DEFAULT 0,
    last_alert_at timestamptz,
    PRIMARY KEY (site, device)
);
COMMENT ON TABLE iot_devices IS 'iot_hub example: latest state of every device of every hub (a mirror, written by the hubs)';

CREATE TABLE IF NOT EXISTS iot_alerts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site      text NOT NULL,
    device    text NOT NULL,
    value     numeric NOT NULL,
    average   numeric NOT NULL,
    at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS iot_alerts_at ON iot_alerts (at);
COMMENT ON TABLE iot_alerts IS 'iot_hub example: every alert of every hub (a mirror, written by the hubs)';

-- the storage key of reading seq of device
CREATE OR REPLACE FUNCTION iot_hub_rkey(device text, seq bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'r:' || device || ':' || lpad(seq::text, 12, '0') $$;

-- one reading: store it, update the device, maybe raise an alert, tell the dashboards
CREATE OR REPLACE FUNCTION iot_hub_ingest(site text, r jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    keep constant int := 1000;          -- readings kept per device, alerts kept per hub
    window_size constant int := 10;     -- readings in the average
    threshold constant numeric := 0.3;
    device text := r->>'device';
    v numeric;
    at timestamptz;
    dev jsonb;
    recent jsonb;
    seq bigint;
    mean numeric;
    is_alert boolean := false;
    meta jsonb;
    aseq bigint;
    alert jsonb;
BEGIN
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' OR device IS NULL OR device !~ '^[A-Za-z0-9_.-]{1,64}$' THEN
        RAISE EXCEPTION 'a reading needs a device name of 1 to 64 letters, digits, "_", "." or "-"'
            USING ERRCODE = '22023', HINT = 'Send {"device": "t1", "value": 21.5}.';
    END IF;
    IF jsonb_typeof(r->'value') IS DISTINCT FROM 'number' THEN
        RAISE EXCEPTION 'the value of a reading must be a JSON number' USING ERRCODE = '22023';
    END IF;
    v := (r->>'value')::numeric;
    at := coalesce((r->>'at')::timestamptz, clock_timestamp());

    dev := coalesce(durable.get('dev:' || device),
                    '{"readings": 0, "seq": 0, "recent": [], "alerts": 0}');
    recent := dev->'recent';
    IF jsonb_array_length(recent) >= window_size THEN
        SELECT avg(x::numeric) INTO mean FROM jsonb_array_elements_text(recent) x;
        is_alert := CASE WHEN mean = 0 THEN v <> 0 ELSE abs(v - mean) > threshold * abs(mean) END;
    END IF;

    seq := (dev->>'seq')::bigint + 1;
    PERFORM durable.put(iot_hub_rkey(device, seq), jsonb_build_object('v', v, 'at', at));
    IF seq > keep THEN
        PERFORM durable.delete(iot_hub_rkey(device, seq - keep));
    END IF;
    recent := recent || to_jsonb(v);
    IF jsonb_array_length(recent) > window_size THEN
        recent := recent - 0;
    END IF;
    dev := dev || jsonb_build_object('readings', (dev->>'readings')::bigint + 1, 'seq', seq,
                                     'last', v, 'last_at', at, 'recent', recent,
                                     'alerts', (dev->>'alerts')::bigint + is_alert::int);
    IF is_alert THEN
        dev := dev || jsonb_build_object('last_alert_at', at);
    END IF;
    PERFORM durable.put('dev:' || device, dev);

    INSERT INTO iot_devices AS d (site, device, readings, last_value, last_at, average, alerts, last_alert_at)
    VALUES (site, device, 1, v, at,
            CASE WHEN jsonb_array_length(recent) >= window_size
                 THEN (SELECT avg(x::numeric) FROM jsonb_array_elements_text(recent) x) END,
            is_alert::int, CASE WHEN is_alert THEN at END)
    ON CONFLICT ON CONSTRAINT iot_devices_pkey DO UPDATE
       SET readings = d.readings + 1, last_value = excluded.last_value, last_at = excluded.last_at,
           average = excluded.average, alerts = d.alerts + excluded.alerts,
           last_alert_at = coalesce(excluded.last_alert_at, d.last_alert_at);

    PERFORM durable.broadcast(jsonb_build_object('type', 'reading', 'site', site, 'device', device,
                                                 'value', v, 'at', at, 'seq', seq),
                              tag => 'dashboard');
    IF is_alert THEN
        meta := coalesce(durable.get('meta'), '{"alerts": 0}');
        aseq := (meta->>'alerts')::bigint + 1;
        alert := jsonb_build_object('site', site, 'device', device, 'value', v,
                                    'average', round(mean, 6), 'at', at, 'seq', aseq);
        PERFORM durable.put(jsonb_build_object('meta', meta || jsonb_build_object('alerts', aseq),
                                               'alert:' || lpad(aseq::text, 12, '0'), alert));
        IF aseq > keep THEN
            PERFORM durable.delete('alert:' || lpad((aseq - keep)::text, 12, '0'));
        END IF;
        INSERT INTO iot_alerts (site, device, value, average, at) VALUES (site, device, v, mean, at);
        PERFORM durable.broadcast(jsonb_build_object('type', 'alert') || alert, tag => 'dashboard');
    END IF;
    RETURN jsonb_build_object('device', device, 'seq', seq, 'alert', is_alert);
END
$$;

-- what a dashboard starts from: every device (with its last 50 values) and the last 20 alerts
CREATE OR REPLACE FUNCTION iot_hub_snapshot(site text) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object(
        'type', 'snapshot', 'site', site,
        'devices', coalesce((
            SELECT jsonb_agg(d.value || jsonb_build_object('device', substr(d.key, 5), 'history',
                       (SELECT coalesce(jsonb_agg(h.value->'v' ORDER BY h.key), '[]')
                          FROM (SELECT * FROM durable.list(prefix => 'r:' || substr(d.key, 5) || ':',
                                                           reverse => true, max_keys => 50)) h))
                     ORDER BY d.key)
              FROM durable.list(prefix => 'dev:') d), '[]'),
        'alerts', coalesce((
            SELECT jsonb_agg(a.value ORDER BY a.key)
              FROM durable.list(prefix => 'alert:', reverse => true, max_keys => 20) a), '[]'))
$$;

CREATE OR REPLACE FUNCTION iot_hub_handler(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    out jsonb := '[]';
    lim int;
BEGIN
    CASE method
    WHEN '$connect' THEN
        -- dashboards (the default) get the snapshot and the live events; ?role=device sockets
        -- only send readings
        IF args->'query'->>'role' = 'device' THEN
            RETURN jsonb_build_object('accept', true, 'tags', '["device"]'::jsonb);
        END IF;
        PERFORM durable.socket_send(durable.socket(), iot_hub_snapshot(id));
        RETURN jsonb_build_object('accept', true, 'tags', '["dashboard"]'::jsonb);

    WHEN '$message' THEN
        -- fire-and-forget frames from device sockets: {"type": "reading", "device": ..., "value": ...}
        IF args->'data'->>'type' = 'reading' THEN
            PERFORM iot_hub_ingest(id, args->'data');
        END IF;
        RETURN NULL;

    WHEN '$close' THEN
        RETURN NULL;

    WHEN 'reading' THEN
        RETURN iot_hub_ingest(id, args);

    WHEN 'batch' THEN
        -- {"readings": [{...}, ...]}: up to 1,000 readings in one call (one transaction)
        IF jsonb_typeof(args->'readings') IS DISTINCT FROM 'array'
           OR jsonb_array_length(args->'readings') > 1000 THEN
            RAISE EXCEPTION 'batch needs {"readings": [...]} with at most 1000 readings'
                USING ERRCODE = '22023';
        END IF;
        FOR r IN SELECT value FROM jsonb_array_elements(args->'readings') LOOP
            out := out || iot_hub_ingest(id, r);
        END LOOP;
        RETURN jsonb_build_object('count', jsonb_array_length(out),
            'alerts', (SELECT count(*) FROM jsonb_array_elements(out) x WHERE (x->>'alert')::boolean));

    WHEN 'history' THEN
        -- the last readings of one device, oldest first: {"device": "t1", "limit": 100}
        lim := least(coalesce((args->>'limit')::int, 100), 1000);
        RETURN coalesce((
            SELECT jsonb_agg(h.value || jsonb_build_object('seq', right(h.key, 12)::bigint) ORDER BY h.key)
              FROM durable.list(prefix => 'r:' || (args->>'device') || ':', reverse => true,
                                max_keys => lim) h), '[]');

    WHEN 'devices' THEN
        RETURN coalesce((SELECT jsonb_agg(d.value || jsonb_build_object('device', substr(d.key, 5))
                                          ORDER BY d.key)
                           FROM durable.list(prefix => 'dev:') d), '[]');

    WHEN 'alerts' THEN
        lim := least(coalesce((args->>'limit')::int, 50), 1000);
        RETURN coalesce((SELECT jsonb_agg(a.value ORDER BY a.key)
                           FROM durable.list(prefix => 'alert:', reverse => true, max_keys => lim) a), '[]');

    WHEN 'snapshot' THEN
        RETURN iot_hub_snapshot(id);

    ELSE
        RAISE EXCEPTION 'iot_hub has no method "%"', method USING ERRCODE = '22023',
            HINT = 'Use reading, batch, history, devices, alerts or snapshot.';
    END CASE;
END
$$;

SELECT durable.define_class('iot_hub', 'iot_hub_handler', '{"websocket": true, "http": true}');
