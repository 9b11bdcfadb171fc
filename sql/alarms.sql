-- alarms: set/get/delete, the view, firing, bad input
CREATE FUNCTION alarmy(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    CASE method
    WHEN 'set' THEN
        PERFORM durable.set_alarm(now() + (args->>'in')::interval, coalesce(args->>'name', 'default'));
        RETURN to_jsonb(durable.get_alarm(coalesce(args->>'name', 'default')) - now());
    WHEN 'set_null' THEN
        PERFORM durable.set_alarm(NULL);
        RETURN NULL;
    WHEN 'get' THEN
        RETURN to_jsonb(durable.get_alarm(args->>'name') IS NOT NULL);
    WHEN 'delete' THEN
        RETURN to_jsonb(durable.delete_alarm(args->>'name'));
    WHEN '$alarm' THEN
        PERFORM durable.put('fired', coalesce(durable.get('fired'), '[]')
            || jsonb_build_object('name', args->>'name', 'attempt', args->'attempt',
                                  'not_early', clock_timestamp() >= (args->>'scheduled_at')::timestamptz));
        RETURN NULL;
    WHEN 'fired' THEN
        RETURN coalesce(durable.get('fired'), '[]');
    END CASE;
END
$$;
SELECT durable.define_class('alarmy', 'alarmy');
-- named alarms, many per object; setting a name again replaces it
SELECT durable.call('alarmy', 'a1', 'set', '{"in": "1 hour"}');
SELECT durable.call('alarmy', 'a1', 'set', '{"in": "2 hours", "name": "later"}');
SELECT durable.call('alarmy', 'a1', 'set', '{"in": "3 hours", "name": "later"}');
SELECT class, id, name, at - scheduled_at AS retry_shift, attempt FROM durable.alarms ORDER BY name;
SELECT durable.call('alarmy', 'a1', 'get', '{"name": "later"}') AS later_set;
SELECT durable.call('alarmy', 'a1', 'delete', '{"name": "later"}') AS deleted,
       durable.call('alarmy', 'a1', 'delete', '{"name": "later"}') AS deleted_again;
SELECT durable.call('alarmy', 'a1', 'get', '{"name": "later"}') AS later_set;
SELECT durable.call('alarmy', 'a1', 'delete', '{"name": "default"}');
-- an alarm in the past fires at once, no earlier than set, with its name and attempt
SELECT durable.call('alarmy', 'a2', 'set', '{"in": "-1 second", "name": "past"}') IS NOT NULL AS set;
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN durable.call('alarmy', 'a2', 'fired') <> '[]';
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT durable.call('alarmy', 'a2', 'fired');
SELECT count(*) AS pending FROM durable.alarms WHERE id = 'a2';
-- bad input: NULL time (22004), outside a handler (55000)
SELECT durable.call('alarmy', 'a3', 'set_null'); \echo :LAST_ERROR_SQLSTATE
SELECT durable.set_alarm(now()); \echo :LAST_ERROR_SQLSTATE
SELECT durable.get_alarm(); \echo :LAST_ERROR_SQLSTATE
SELECT durable.call('alarmy', 'a3', 'get', '{}'); \echo :LAST_ERROR_SQLSTATE
