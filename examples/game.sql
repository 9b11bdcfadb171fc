-- examples/game.sql — a real-time game session: one object per game room.
--
-- Players join by opening a WebSocket ($connect) and leave by closing it ($close).  They steer
-- their dot with inputs ({"dx": -1..1, "dy": -1..1}: the 'input' method, or an
-- {"type": "input", ...} frame).  A 20 Hz tick driven by an alarm moves every dot, lets players
-- pick up the coin, and broadcasts the new state; the loop starts with the first player and
-- stops when the last one leaves (no alarm is left behind).  The class uses durability 'async':
-- a tick commits without waiting for the WAL flush; a crash may lose the last moments of a
-- game, never the database's consistency.  The page is examples/web/game.html; see
-- docs/examples/game.md.
--
--   ws://127.0.0.1:7432/objects/game/arena?name=ada       (events: welcome, join, leave, tick)
--   SELECT durable.call('game', 'arena', 'state');
--
-- Storage of a game object:
--   state   {"tick": n, "players": {"p42": {"x", "y", "dx", "dy", "name", "color", "score"}},
--            "coin": {"x", "y"}}
-- Re-running this file replaces the functions and the class; games are kept.

-- the arena and the rules
CREATE OR REPLACE FUNCTION game_rules() RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT '{"width": 800, "height": 500, "speed": 8, "radius": 12, "coin_radius": 8, "tick_ms": 50}'::jsonb
$$;

-- a random spot in the arena, away from the walls
CREATE OR REPLACE FUNCTION game_spot() RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
    SELECT jsonb_build_object('x', 30 + floor(random() * ((game_rules()->>'width')::int - 60)),
                              'y', 30 + floor(random() * ((game_rules()->>'height')::int - 60)))
$$;

-- what goes to the players every tick: the players as a list
CREATE OR REPLACE FUNCTION game_view(state jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'type', 'tick', 'tick', state->'tick', 'coin', state->'coin',
        'players', coalesce((SELECT jsonb_agg(p.value || jsonb_build_object('id', p.key) ORDER BY p.key)
                               FROM jsonb_each(state->'players') p), '[]'))
$$;

-- one step of the game: move, clamp to the walls, pick up the coin
CREATE OR REPLACE FUNCTION game_step(state jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    rules jsonb := game_rules();
    w int := (rules->>'width')::int;
    h int := (rules->>'height')::int;
    speed numeric := (rules->>'speed')::numeric;
    reach numeric := (rules->>'radius')::numeric + (rules->>'coin_radius')::numeric;
    r int := (rules->>'radius')::int;
    p record;
    pl jsonb;
    x numeric;
    y numeric;
    dx numeric;
    dy numeric;
    len numeric;
    players jsonb := '{}';
    coin jsonb := state->'coin';
BEGIN
    FOR p IN SELECT key, value FROM jsonb_each(state->'players') ORDER BY key LOOP
        pl := p.value;
        dx := (pl->>'dx')::numeric;
        dy := (pl->>'dy')::numeric;
        len := sqrt(dx * dx + dy * dy);
        IF len > 0 THEN
            x := least(greatest((pl->>'x')::numeric + round(speed * dx / len, 2), r), w - r);
            y := least(greatest((pl->>'y')::numeric + round(speed * dy / len, 2), r), h - r);
            pl := pl || jsonb_build_object('x', x, 'y', y);
        END IF;
        IF sqrt(power((pl->>'x')::numeric - (coin->>'x')::numeric, 2)
                + power((pl->>'y')::numeric - (coin->>'y')::numeric, 2)) <= reach THEN
            pl := pl || jsonb_build_object('score', (pl->>'score')::int + 1);
            coin := game_spot();
        END IF;
        players := players || jsonb_build_object(p.key, pl);
    END LOOP;
    RETURN state || jsonb_build_object('tick', (state->>'tick')::bigint + 1, 'players', players,
                                       'coin', coin);
END
$$;

CREATE OR REPLACE FUNCTION game_handler(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    tick constant interval := '50 ms';
    sock bigint := durable.socket();
    state jsonb := coalesce(durable.get('state'),
                            jsonb_build_object('tick', 0, 'players', '{}'::jsonb, 'coin', game_spot()));
    player text;
    me jsonb;
    next_at timestamptz;
    dx numeric;
    dy numeric;
BEGIN
    CASE method
    WHEN '$connect' THEN
        IF (SELECT count(*) FROM jsonb_object_keys(state->'players')) >= 32 THEN
            RETURN jsonb_build_object('accept', false, 'code', 4003, 'reason', 'the game is full');
        END IF;
        player := 'p' || sock;
        me := game_spot() || jsonb_build_object(
            'dx', 0, 'dy', 0, 'score', 0,
            'name', left(coalesce(nullif(btrim(args->'query'->>'name'), ''), 'player ' || sock), 24),
            'color', format('hsl(%s, 75%%, 50%%)', (sock * 137) % 360));
        state := jsonb_set(state, ARRAY['players', player], me);
        PERFORM durable.put('state', state);
        -- the first player starts the loop
        IF durable.get_alarm('tick') IS NULL THEN
            PERFORM durable.set_alarm(clock_timestamp() + tick, 'tick');
        END IF;
        PERFORM durable.socket_send(sock, jsonb_build_object('type', 'welcome', 'you', player,
                                                             'rules', game_rules(), 'state', game_view(state)));
        PERFORM durable.broadcast(jsonb_build_object('type', 'join', 'id', player) || me, exclude => sock);
        RETURN jsonb_build_object('accept', true, 'attachment', jsonb_build_object('player', player));

    WHEN '$close' THEN
        player := args->'attachment'->>'player';
        IF player IS NOT NULL AND state->'players' ? player THEN
            state := state #- ARRAY['players', player];
            PERFORM durable.put('state', state);
            PERFORM durable.broadcast(jsonb_build_object('type', 'leave', 'id', player));
        END IF;
        -- the last player stops the loop
        IF state->'players' = '{}' THEN
            PERFORM durable.delete_alarm('tick');
        END IF;
        RETURN NULL;

    WHEN '$alarm' THEN
        IF args->>'name' <> 'tick' THEN
            RETURN NULL;
        END IF;
        -- once a second, drop players whose socket is gone without a $close (a server restart)
        IF (state->>'tick')::bigint % 20 = 0 THEN
            state := jsonb_set(state, '{players}', coalesce(
                (SELECT jsonb_object_agg(p.key, p.value) FROM jsonb_each(state->'players') p
                  WHERE EXISTS (SELECT 1 FROM durable.sockets() s
                                 WHERE s.attachment->>'player' = p.key)), '{}'));
        END IF;
        IF state->'players' = '{}' THEN
            PERFORM durable.put('state', state);
            RETURN NULL;                -- nobody left: the loop ends here
        END IF;
        state := game_step(state);
        PERFORM durable.put('state', state);
        PERFORM durable.broadcast(game_view(state));
        -- keep the 20 Hz rhythm from the scheduled time; after a stall, restart from now
        next_at := (args->>'scheduled_at')::timestamptz + tick;
        IF next_at < clock_timestamp() - interval '250 ms' THEN
            next_at := clock_timestamp() + tick;
        END IF;
        PERFORM durable.set_alarm(next_at, 'tick');
        RETURN NULL;

    WHEN '$message', 'input' THEN
        -- {"dx": -1|0|1, "dy": -1|0|1}; as a frame: {"type": "input", "dx": ..., "dy": ...}
        IF method = '$message' THEN
            IF args->'data'->>'type' IS DISTINCT FROM 'input' THEN
                RETURN NULL;
            END IF;
            args := args->'data';
        END IF;
        SELECT attachment->>'player' INTO player FROM durable.sockets() WHERE socket = sock;
        IF player IS NULL OR NOT state->'players' ? player THEN
            RAISE EXCEPTION 'input comes from a player''s WebSocket' USING ERRCODE = '55000';
        END IF;
        dx := greatest(-1, least(1, coalesce((args->>'dx')::numeric, 0)));
        dy := greatest(-1, least(1, coalesce((args->>'dy')::numeric, 0)));
        state := jsonb_set(state, ARRAY['players', player],
                           state->'players'->player || jsonb_build_object('dx', dx, 'dy', dy));
        PERFORM durable.put('state', state);
        RETURN jsonb_build_object('dx', dx, 'dy', dy);

    WHEN 'state' THEN
        RETURN game_view(state) || jsonb_build_object('running', durable.get_alarm('tick') IS NOT NULL);

    ELSE
        RAISE EXCEPTION 'game has no method "%"', method USING ERRCODE = '22023',
            HINT = 'Use input or state.';
    END CASE;
END
$$;

SELECT durable.define_class('game', 'game_handler', '{"websocket": true, "durability": "async"}');
