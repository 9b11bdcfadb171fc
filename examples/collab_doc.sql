-- examples/collab_doc.sql — a collaborative plain-text document (one object per document).
--
-- Clients edit with operations made on a version of the text; the object transforms each one
-- against the operations committed since that version (operational transformation), applies it,
-- stores text + version + a log of recent operations in its storage, sends the transformed
-- operation to the other sockets and answers the sender.  Cursors and presence go to the others.
-- Clients load the text once ("get") and then follow the events; the class retains its events
-- so that a client that reconnects resumes the stream (?since=, as durable.js does) instead of
-- loading the text again.  An edit is idempotent by (client, seq): a client that does not know
-- whether its edit committed before the connection dropped sends it again.
-- The page examples/web/doc.html (with ot.js and collab.js) is the client; see
-- docs/examples/collab_doc.md.
--
--   SELECT durable.call('collab_doc', 'notes', 'insert', '{"pos": 0, "text": "Hello"}');
--   SELECT durable.call('collab_doc', 'notes', 'insert', '{"pos": 5, "text": ", world"}');
--   SELECT durable.call('collab_doc', 'notes', 'delete', '{"pos": 0, "len": 1}');
--   SELECT durable.call('collab_doc', 'notes', 'get');      -- {"text": "ello, world", "version": 3}
--   ws://127.0.0.1:7432/objects/collab_doc/notes?client=c1&name=ada
--
-- An operation is a JSON array walked from the start of the text: a positive number keeps
-- (retains) that many characters, a string inserts itself, a negative number deletes that many
-- characters; the rest of the text is kept.  [5, ", world"] inserts at 5; [0, -1] is wrong
-- (zero), [-1] deletes the first character.  Characters are Unicode code points.
--
-- Storage of a document object:
--   doc                   {"text": "...", "version": n}
--   op:000000000042       {"op": [...], "client": "...", "seq": n, "at": "..."}  (the last 1,000)
-- Re-running this file replaces the functions and the class; documents are kept.

-- append component c to operation op, merging it with a last component of the same kind
CREATE OR REPLACE FUNCTION collab_doc_push(op jsonb, c jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n int := jsonb_array_length(op);
    last jsonb := CASE WHEN n > 0 THEN op->(n - 1) END;
    x bigint;
BEGIN
    IF jsonb_typeof(c) = 'string' THEN
        IF c #>> '{}' = '' THEN RETURN op; END IF;
        IF jsonb_typeof(last) = 'string' THEN
            RETURN jsonb_set(op, ARRAY[(n - 1)::text], to_jsonb((last #>> '{}') || (c #>> '{}')));
        END IF;
        RETURN op || jsonb_build_array(c);
    END IF;
    x := c::bigint;
    IF x = 0 THEN RETURN op; END IF;
    IF jsonb_typeof(last) = 'number' AND sign(last::bigint) = sign(x) THEN
        RETURN jsonb_set(op, ARRAY[(n - 1)::text], to_jsonb(last::bigint + x));
    END IF;
    RETURN op || jsonb_build_array(c);
END
$$;

-- drop trailing retains (the rest of the text is kept anyway)
CREATE OR REPLACE FUNCTION collab_doc_trim(op jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    WHILE jsonb_array_length(op) > 0 AND jsonb_typeof(op->-1) = 'number' AND (op->-1)::bigint > 0 LOOP
        op := op - (-1);
    END LOOP;
    RETURN op;
END
$$;

-- raise 22023 unless op is a well-formed operation
CREATE OR REPLACE FUNCTION collab_doc_check(op jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    c jsonb;
BEGIN
    IF op IS NULL OR jsonb_typeof(op) <> 'array' THEN
        RAISE EXCEPTION 'an operation is a JSON array' USING ERRCODE = '22023',
            HINT = 'Numbers keep (n > 0) or delete (n < 0) characters, strings insert.';
    END IF;
    IF jsonb_array_length(op) > 10000 THEN
        RAISE EXCEPTION 'operation has too many components' USING ERRCODE = '54000';
    END IF;
    FOR c IN SELECT value FROM jsonb_array_elements(op) LOOP
        IF NOT (CASE jsonb_typeof(c)
                WHEN 'string' THEN c #>> '{}' <> ''
                WHEN 'number' THEN c::numeric <> 0 AND c::numeric = trunc(c::numeric)
                                   AND abs(c::numeric) <= 100000000
                ELSE false END) THEN
            RAISE EXCEPTION 'bad operation component %', c USING ERRCODE = '22023',
                HINT = 'Components are non-zero integers or non-empty strings.';
        END IF;
    END LOOP;
    RETURN op;
END
$$;

-- the text after op; 22023 if op reaches past its end
CREATE OR REPLACE FUNCTION collab_doc_apply(doc text, op jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    parts text[] := '{}';
    len int := char_length(doc);
    pos int := 0;               -- characters of doc consumed
    c jsonb;
    n bigint;
BEGIN
    FOR c IN SELECT value FROM jsonb_array_elements(op) LOOP
        IF jsonb_typeof(c) = 'string' THEN
            parts := parts || (c #>> '{}');
            CONTINUE;
        END IF;
        n := c::bigint;
        IF pos + abs(n) > len THEN
            RAISE EXCEPTION 'operation reaches past the end of the text (% characters)', len
                USING ERRCODE = '22023';
        END IF;
        IF n > 0 THEN
            parts := parts || substr(doc, pos + 1, n::int);
        END IF;
        pos := pos + abs(n)::int;
    END LOOP;
    RETURN array_to_string(parts, '') || substr(doc, pos + 1);
END
$$;

-- transform(a, b, a_first): a rewritten to apply after b (both made on the same text).
-- a_first: when both insert at the same place, a's text goes first.  The same algorithm as
-- transform() in examples/web/ot.js, which also returns b rewritten.
CREATE OR REPLACE FUNCTION collab_doc_transform(a jsonb, b jsonb, a_first boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    out jsonb := '[]';
    na int := jsonb_array_length(a);
    nb int := jsonb_array_length(b);
    ia int := 0;
    ib int := 0;
    ka char;                    -- kind of a's current component: r(etain) d(elete) i(nsert), NULL at end
    kb char;
    la bigint;                  -- what is left of it (retain/delete length)
    lb bigint;
    sa text;                    -- its text (insert)
    sb text;
    m bigint;
BEGIN
    LOOP
        IF ka IS NULL AND ia < na THEN
            IF jsonb_typeof(a->ia) = 'string' THEN
                ka := 'i'; sa := a->>ia;
            ELSE
                la := (a->ia)::bigint; ka := CASE WHEN la > 0 THEN 'r' ELSE 'd' END; la := abs(la);
            END IF;
            ia := ia + 1;
        END IF;
        IF kb IS NULL AND ib < nb THEN
            IF jsonb_typeof(b->ib) = 'string' THEN
                kb := 'i'; sb := b->>ib;
            ELSE
                lb := (b->ib)::bigint; kb := CASE WHEN lb > 0 THEN 'r' ELSE 'd' END; lb := abs(lb);
            END IF;
            ib := ib + 1;
        END IF;

        IF ka = 'i' AND (a_first OR kb IS DISTINCT FROM 'i') THEN
            out := collab_doc_push(out, to_jsonb(sa));
            ka := NULL;
            CONTINUE;
        END IF;
        IF kb = 'i' THEN
            out := collab_doc_push(out, to_jsonb(char_length(sb)));
            kb := NULL;
            CONTINUE;
        END IF;
        -- a has ended: the rest of a' keeps the text
        EXIT WHEN ka IS NULL;
        IF kb IS NULL THEN
            -- b has ended (keeps the rest): a's component goes through unchanged
            out := collab_doc_push(out, to_jsonb(CASE WHEN ka = 'r' THEN la ELSE -la END));
            ka := NULL;
            CONTINUE;
        END IF;
        m := least(la, lb);
        IF ka = 'r' AND kb = 'r' THEN
            out := collab_doc_push(out, to_jsonb(m));
        ELSIF ka = 'd' AND kb = 'r' THEN
            out := collab_doc_push(out, to_jsonb(-m));
        END IF;
        -- a keeps what b deleted, or both deleted it: nothing for a'
        la := la - m;
        lb := lb - m;
        IF la = 0 THEN ka := NULL; END IF;
        IF lb = 0 THEN kb := NULL; END IF;
    END LOOP;
    RETURN collab_doc_trim(out);
END
$$;

-- one edit: transform op (made on version base) against the operations committed since,
-- apply, store, broadcast to the other sockets.  Runs inside the handler (object storage).
-- The same edit again (client and seq of an operation committed after base) changes nothing
-- and answers as the first time.
CREATE OR REPLACE FUNCTION collab_doc_edit(base bigint, op jsonb, client text, seq bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    keep constant int := 1000;          -- operations kept in the log
    max_chars constant int := 200000;   -- largest document
    doc jsonb := coalesce(durable.get('doc'), '{"text": "", "version": 0}');
    version bigint := (doc->>'version')::bigint;
    txt text := doc->>'text';
    r record;
BEGIN
    op := collab_doc_check(op);
    IF base IS NULL THEN
        base := version;
    END IF;
    IF base > version OR base < 0 THEN
        RAISE EXCEPTION 'base version % does not exist (the document is at version %)', base, version
            USING ERRCODE = '22023';
    END IF;
    IF base < version - keep THEN
        RAISE EXCEPTION 'base version % is too old (the document is at version %)', base, version
            USING ERRCODE = '40001', HINT = 'Fetch the document again with "get".';
    END IF;
    -- the operations committed since base, oldest first
    FOR r IN SELECT key, value FROM durable.list(start_key => 'op:' || lpad((base + 1)::text, 12, '0'),
                                                end_key => 'op:' || lpad((version + 1)::text, 12, '0'))
    LOOP
        IF seq IS NOT NULL AND r.value->>'client' = client AND (r.value->>'seq')::bigint = seq THEN
            RETURN jsonb_build_object('version', substr(r.key, 4)::bigint, 'op', r.value->'op',
                                      'duplicate', true);
        END IF;
        -- ties at one position: the smaller client id first; equal ids: the committed one first
        op := collab_doc_transform(op, r.value->'op', client COLLATE "C" < (r.value->>'client') COLLATE "C");
    END LOOP;
    txt := collab_doc_apply(txt, op);
    IF char_length(txt) > max_chars THEN
        RAISE EXCEPTION 'the document would exceed % characters', max_chars USING ERRCODE = '54000';
    END IF;
    version := version + 1;
    PERFORM durable.put(jsonb_build_object(
        'doc', jsonb_build_object('text', txt, 'version', version),
        'op:' || lpad(version::text, 12, '0'),
            jsonb_build_object('op', op, 'client', client, 'seq', seq, 'at', clock_timestamp())));
    IF version > keep THEN
        PERFORM durable.delete('op:' || lpad((version - keep)::text, 12, '0'));
    END IF;
    PERFORM durable.broadcast(jsonb_build_object('type', 'op', 'version', version, 'op', op,
                                                 'client', client, 'seq', seq),
                              exclude => durable.socket());
    RETURN jsonb_build_object('version', version, 'op', op);
END
$$;

CREATE OR REPLACE FUNCTION collab_doc_handler(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    sock bigint := durable.socket();
    me jsonb;                   -- the attachment of the calling socket
    client text;
    doc jsonb;
    since bigint;
    v bigint;
    q jsonb;
BEGIN
    IF sock IS NOT NULL AND method <> '$connect' THEN
        SELECT attachment INTO me FROM durable.sockets() WHERE socket = sock;
    END IF;
    -- who edits: the socket's client id; from SQL, args.client (default "sql")
    client := coalesce(me->>'client',
                       CASE WHEN args->>'client' ~ '^[A-Za-z0-9_.-]{1,64}$' THEN args->>'client' END,
                       'sql');

    CASE method
    WHEN '$connect' THEN
        q := args->'query';
        client := CASE WHEN q->>'client' ~ '^[A-Za-z0-9_.-]{1,64}$' THEN q->>'client'
                       ELSE 's' || sock END;
        me := jsonb_build_object(
            'client', client,
            'name', left(coalesce(nullif(btrim(q->>'name'), ''), 'guest-' || right(client, 4)), 40),
            'color', format('hsl(%s, 70%%, 45%%)', abs(hashtext(client)) % 360),
            'pos', NULL);
        -- who we are and who is here; the text comes from "get" (once, not on every reconnect)
        PERFORM durable.socket_send(sock, jsonb_build_object(
            'type', 'hello',
            'you', me || jsonb_build_object('socket', sock),
            'peers', coalesce((SELECT jsonb_agg(s.attachment || jsonb_build_object('socket', s.socket)
                                                ORDER BY s.socket)
                                 FROM durable.sockets() s WHERE s.socket <> sock), '[]')));
        PERFORM durable.broadcast(jsonb_build_object('type', 'join') || me
                                  || jsonb_build_object('socket', sock), exclude => sock);
        RETURN jsonb_build_object('accept', true, 'attachment', me);

    WHEN '$close' THEN
        PERFORM durable.broadcast(jsonb_build_object(
            'type', 'leave', 'socket', args->'socket', 'client', args->'attachment'->'client'));
        RETURN NULL;

    WHEN '$message' THEN
        -- fire-and-forget frames: {"type": "cursor", "pos": n, "version": v}
        IF args->'data'->>'type' = 'cursor' THEN
            RETURN collab_doc_handler(id, 'cursor', args->'data');
        END IF;
        RETURN NULL;

    WHEN 'get' THEN
        RETURN coalesce(durable.get('doc'), '{"text": "", "version": 0}');

    WHEN 'since' THEN
        -- the operations after version args.version (to catch up after a reconnect)
        since := (args->>'version')::bigint;
        doc := coalesce(durable.get('doc'), '{"text": "", "version": 0}');
        v := (doc->>'version')::bigint;
        IF since IS NULL OR since < 0 OR since > v THEN
            RAISE EXCEPTION 'version % does not exist (the document is at version %)', since, v
                USING ERRCODE = '22023';
        END IF;
        IF since < v AND durable.get('op:' || lpad((since + 1)::text, 12, '0')) IS NULL THEN
            RAISE EXCEPTION 'version % is too old to catch up from', since
                USING ERRCODE = '40001', HINT = 'Fetch the document again with "get".';
        END IF;
        RETURN jsonb_build_object('version', v, 'ops', coalesce(
            (SELECT jsonb_agg(l.value || jsonb_build_object('version', substr(l.key, 4)::bigint)
                              ORDER BY l.key)
               FROM durable.list(start_key => 'op:' || lpad((since + 1)::text, 12, '0'),
                                 end_key => 'op:' || lpad((v + 1)::text, 12, '0')) l), '[]'));

    WHEN 'edit' THEN
        RETURN collab_doc_edit((args->>'base')::bigint, args->'op', client, (args->>'seq')::bigint);

    WHEN 'insert' THEN
        IF coalesce(args->>'text', '') = '' OR coalesce((args->>'pos')::int, -1) < 0 THEN
            RAISE EXCEPTION 'insert needs {"pos": n >= 0, "text": "..."}' USING ERRCODE = '22023';
        END IF;
        RETURN collab_doc_edit((args->>'base')::bigint,
            collab_doc_push(collab_doc_push('[]', to_jsonb((args->>'pos')::int)), args->'text'),
            client, (args->>'seq')::bigint);

    WHEN 'delete' THEN
        IF coalesce((args->>'len')::int, 0) <= 0 OR coalesce((args->>'pos')::int, -1) < 0 THEN
            RAISE EXCEPTION 'delete needs {"pos": n >= 0, "len": n > 0}' USING ERRCODE = '22023';
        END IF;
        RETURN collab_doc_edit((args->>'base')::bigint,
            collab_doc_push(collab_doc_push('[]', to_jsonb((args->>'pos')::int)),
                            to_jsonb(-(args->>'len')::int)),
            client, (args->>'seq')::bigint);

    WHEN 'cursor' THEN
        IF sock IS NULL THEN
            RAISE EXCEPTION 'cursor is a method for WebSocket clients' USING ERRCODE = '55000';
        END IF;
        me := me || jsonb_build_object('pos', (args->>'pos')::int, 'version', (args->>'version')::bigint);
        PERFORM durable.set_attachment(sock, me);
        PERFORM durable.broadcast(jsonb_build_object('type', 'cursor') || me
                                  || jsonb_build_object('socket', sock), exclude => sock);
        RETURN 'true';

    WHEN 'presence' THEN
        RETURN coalesce((SELECT jsonb_agg(s.attachment || jsonb_build_object('socket', s.socket)
                                          ORDER BY s.socket)
                           FROM durable.sockets() s), '[]');

    ELSE
        RAISE EXCEPTION 'collab_doc has no method "%"', method USING ERRCODE = '22023',
            HINT = 'Use get, since, edit, insert, delete, cursor or presence.';
    END CASE;
END
$$;

-- events are kept as long as the log of operations: a client away for less than that resumes
SELECT durable.define_class('collab_doc', 'collab_doc_handler',
                            '{"websocket": true, "retain": {"events": 5000, "seconds": 86400}}');
