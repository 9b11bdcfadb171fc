-- setup: the extension installs into schema durable with its functions and views
CREATE EXTENSION pg_durable_objects;
SELECT extversion FROM pg_extension WHERE extname = 'pg_durable_objects';
-- every member object has a comment
SELECT pg_describe_object(classid, objid, objsubid) AS object
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_durable_objects')
   AND deptype = 'e'
   AND obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)::name) IS NULL
 ORDER BY 1;
-- the scheduler is up; it starts hosts when calls need them
SELECT count(*) AS schedulers FROM pg_stat_activity
 WHERE backend_type = 'pg_durable_objects scheduler';
-- the counter class used by the following tests
CREATE FUNCTION counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    CASE method
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + coalesce((args->>'by')::bigint, 1);
        PERFORM durable.put('n', to_jsonb(n));
        RETURN to_jsonb(n);
    WHEN 'get' THEN
        RETURN coalesce(durable.get('n'), '0');
    WHEN 'echo' THEN
        RETURN args;
    WHEN 'null' THEN
        RETURN NULL;
    WHEN 'whoami' THEN
        RETURN jsonb_build_object('current_user', current_user, 'id', id);
    WHEN 'fail' THEN
        PERFORM durable.put('n', '-1');
        RAISE EXCEPTION 'counter % refuses', id
            USING ERRCODE = 'P0042', DETAIL = 'It was asked to fail.', HINT = 'Do not ask.';
    ELSE
        RAISE EXCEPTION 'unknown method "%"', method USING ERRCODE = '22023';
    END CASE;
END
$$;
SELECT durable.define_class('counter', 'counter');
