#!/usr/bin/env bash
# Scale-out on Citus (issue 17; docs/scaling.md): a coordinator and two workers on this
# machine (test/citus/lib.sh), durable.distribute(), and what calls, alarms and sends do after
# it.  Needs Citus (test/citus/build.sh, run by make test as root); without it every test
# prints a "skip - NAME (reason)" line, which the runner counts as skipped.
source "$TEST_ROOT/test/lib.sh"
source "$TEST_ROOT/test/citus/lib.sh"
set -u

tests=(distribute_refuses_without_citus distribute_superuser_only distribute_tables
       distribute_functions distribute_twice_harmless class_on_every_node
       calls_from_coordinator_run_on_owner add_node_and_rebalance calls_from_workers_run_on_owner
       g1_serial_across_nodes call_on_wrong_node_refused call_between_nodes_refused
       alarms_per_node sends_per_node drop_class_everywhere no_distributed_scan_errors)

# on the runner's own cluster, which has no Citus: a clear error, whatever the machine
out=$(psql -X -At -v VERBOSITY=verbose -c "SELECT durable.distribute()" 2>&1)
if [[ $out == *0A000*"needs the citus extension"* ]] && [[ $out == *HINT*shared_preload_libraries* ]]; then
    ok "distribute_refuses_without_citus"
else
    not_ok "distribute_refuses_without_citus" "$out"
fi

if ! reason=$(citus_available); then
    for t in "${tests[@]:1}"; do echo "skip - $t ($reason)"; done
    exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/citus-test.XXXXXX")
trap 'citus_cluster_stop; rm -rf "$dir"' EXIT
# a coordinator and one worker; the second worker joins later (add_node_and_rebalance)
if ! citus_cluster_start "$dir" 1; then
    not_ok "citus cluster started" "$(tail -5 "$dir"/*/server.log 2>/dev/null)"
    exit 1
fi
C=${NODE_PORT[coord]} W1=${NODE_PORT[w1]} W2=${NODE_PORT[w2]}


# --- point 1: durable.distribute() -------------------------------------------------------
on coord "CREATE ROLE plain LOGIN" >/dev/null
state=$(on_try coord "SET ROLE plain; SELECT durable.distribute()" -v VERBOSITY=verbose)
[[ $state == *42501* ]] && ok "distribute_superuser_only" || not_ok "distribute_superuser_only" "$state"

on coord "SELECT durable.distribute()" >/dev/null || not_ok "distribute ran" "$(on_try coord "SELECT durable.distribute()")"
tables=$(on coord "SELECT string_agg(logicalrelid::text || ':' || partmethod::text || ':' ||
                          CASE WHEN partmethod = 'h' THEN column_to_column_name(logicalrelid, partkey)
                               ELSE '-' END, ' ' ORDER BY logicalrelid::text)
                     FROM pg_dist_partition" 2>&1)
colocations=$(on coord "SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE partmethod = 'h'")
want="durable._alarms:h:id durable._classes:n:- durable._dead_letters:h:id durable._events:h:id durable._history:h:id durable._outbox:h:id durable._storage:h:id durable._versions:h:id"
if [ "$tables" = "$want" ] && [ "$colocations" = 1 ]; then
    ok "distribute_tables"
else
    not_ok "distribute_tables" "$tables; $colocations co-location groups"
fi

funcs=$(on coord "SELECT string_agg(objid::regprocedure::text || ':' || distribution_argument_index, ' ' ORDER BY 1)
                    FROM pg_dist_object WHERE classid = 'pg_proc'::regclass
                     AND objid IN ('durable.call(text,text,text,jsonb)'::regprocedure,
                                   'durable.send(text,text,text,jsonb)'::regprocedure)")
[ "$funcs" = "durable.call(text,text,text,jsonb):1 durable.send(text,text,text,jsonb):1" ] &&
    ok "distribute_functions" || not_ok "distribute_functions" "$funcs"

shards_before=$(on coord "SELECT count(*) FROM pg_dist_shard")
again=$(on_try coord "SELECT durable.distribute(); SELECT durable.distribute()")
shards_after=$(on coord "SELECT count(*) FROM pg_dist_shard")
[ "$shards_before" = "$shards_after" ] && [ "$(on coord "SELECT count(*) FROM pg_dist_partition")" = 8 ] &&
    ! [[ $again == *ERROR* ]] && ok "distribute_twice_harmless" ||
    not_ok "distribute_twice_harmless" "$shards_before -> $shards_after shards; $again"

# --- classes ----------------------------------------------------------------------------
on coord "
CREATE FUNCTION public.node_of(oid text) RETURNS int LANGUAGE sql AS \$\$
    SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid
     WHERE p.shardid = get_shard_id_for_distribution_column('durable._storage', oid) \$\$;
CREATE FUNCTION public.counter(id text, method text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS \$\$
DECLARE n bigint;
BEGIN
    CASE method
    WHEN 'inc' THEN
        n := coalesce(durable.get('n')::bigint, 0) + 1;
        PERFORM durable.put('n', to_jsonb(n));
        RETURN jsonb_build_object('n', n, 'node', current_setting('port')::int);
    WHEN 'get' THEN
        RETURN durable.get(args->>'key');
    WHEN 'alarm' THEN
        PERFORM durable.set_alarm(clock_timestamp() + interval '300 ms');
        RETURN NULL;
    WHEN '\$alarm' THEN
        PERFORM durable.put('alarm_node', to_jsonb(current_setting('port')::int));
        RETURN NULL;
    WHEN 'mark' THEN
        PERFORM durable.put('marks', to_jsonb(coalesce(durable.get('marks')::int, 0) + 1));
        PERFORM durable.put('mark_node', to_jsonb(current_setting('port')::int));
        RETURN NULL;
    WHEN 'call' THEN
        RETURN durable.call('counter', args->>'other', 'inc');
    ELSE
        RETURN NULL;
    END CASE;
END \$\$;
SELECT durable.define_class('counter', 'public.counter')" >/dev/null
seen=
for node in coord w1; do
    seen="$seen $(on "$node" "SELECT count(*) FROM durable._classes WHERE name = 'counter'")"
done
# w2 is not part of the cluster yet: it gets the class when it joins (add_node_and_rebalance)
[ "$seen" = " 1 1" ] && [ "$(on w1 "SELECT count(*) FROM pg_proc WHERE proname = 'counter'")" = 1 ] &&
    ok "class_on_every_node" || not_ok "class_on_every_node" "rows per node:$seen"

# --- calls -------------------------------------------------------------------------------
ids=$(seq -f 'o%g' 1 16)
# increment_all N: increment every object from the coordinator; how many did not answer
# n = N from the node that holds them
increment_all() {
    local id r owner bad=0
    for id in $ids; do
        r=$(on coord "SELECT durable.call('counter', '$id', 'inc')")
        owner=$(on coord "SELECT node_of('$id')")
        [ "$r" = "{\"n\": $1, \"node\": $owner}" ] || { bad=$((bad + 1)); echo "# $id: $r, owner $owner" >&2; }
    done
    echo "$bad"
}
bad=$(increment_all 1)
[ "$bad" = 0 ] && ok "calls_from_coordinator_run_on_owner" ||
    not_ok "calls_from_coordinator_run_on_owner" "$bad of 16 wrong"

# a second worker joins, shards move to it; every object keeps its state and runs there
start=$(date +%s)
citus_add_worker w2 &&
    on coord "SELECT rebalance_table_shards()" >/dev/null 2>"$dir/rebalance.err"
moved=$(on coord "SELECT count(DISTINCT n.nodeport) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
                   JOIN pg_dist_shard s USING (shardid) WHERE s.logicalrelid = 'durable._storage'::regclass")
bad=$(increment_all 2)
on_w2=$(for id in $ids; do on coord "SELECT node_of('$id')"; done | grep -c "^$W2$")
if [ "$moved" = 2 ] && [ "$bad" = 0 ] && [ "$on_w2" -gt 0 ] &&
   [ "$(on w2 "SELECT count(*) FROM durable._classes WHERE name = 'counter'")" = 1 ]; then
    ok "add_node_and_rebalance ($(( $(date +%s) - start ))s, $on_w2 of 16 objects now on w2)"
else
    not_ok "add_node_and_rebalance" "nodes with shards: $moved, wrong: $bad, on w2: $on_w2; $(cat "$dir/rebalance.err")"
fi

# ids on each worker, for the tests below
id_w1=$(for id in $ids; do [ "$(on coord "SELECT node_of('$id')")" = "$W1" ] && echo "$id"; done | head -1)
id_w2=$(for id in $ids; do [ "$(on coord "SELECT node_of('$id')")" = "$W2" ] && echo "$id"; done | head -1)

bad=0
for node in w1 w2; do
    for id in "$id_w1" "$id_w2"; do
        # a call alone in its statement: Citus routes it (an expression around it would not be)
        r=$(on "$node" "SELECT durable.call('counter', '$id', 'inc')" | sed -n 's/.*"node": \([0-9]*\).*/\1/p')
        [ "$r" = "$(on coord "SELECT node_of('$id')")" ] || { bad=$((bad + 1)); echo "# from $node, $id ran on $r"; }
    done
done
[ "$bad" = 0 ] && ok "calls_from_workers_run_on_owner" || not_ok "calls_from_workers_run_on_owner" "$bad of 4 wrong"

# G1 across nodes: sessions on the coordinator and on both workers increment one counter
before=$(on coord "SELECT durable.call('counter', 'g1', 'get', '{\"key\": \"n\"}')")
before=${before:-0}
for node in coord w1 w2 coord; do
    ( for i in $(seq 25); do on "$node" "SELECT durable.call('counter', 'g1', 'inc')" >/dev/null; done ) &
done
wait
after=$(on coord "SELECT durable.call('counter', 'g1', 'get', '{\"key\": \"n\"}')")
[ "$after" = $((before + 100)) ] && ok "g1_serial_across_nodes" ||
    not_ok "g1_serial_across_nodes" "4 x 25 increments: $before -> $after"

# inside a transaction block Citus does not route the call: it must not run on this node
n_before=$(on coord "SELECT durable.call('counter', '$id_w2', 'get', '{\"key\": \"n\"}')")
out=$(on_try w1 "BEGIN; SELECT durable.call('counter', '$id_w2', 'inc'); COMMIT" -v VERBOSITY=verbose)
n_after=$(on coord "SELECT durable.call('counter', '$id_w2', 'get', '{\"key\": \"n\"}')")
[[ $out == *0A000*"lives on another node"* ]] && [ "$n_before" = "$n_after" ] &&
    ok "call_on_wrong_node_refused" || not_ok "call_on_wrong_node_refused" "$out; n $n_before -> $n_after"

# a handler on w1 calling an object on w2: refused with the same clear error (not yet routed)
out=$(on_try coord "SELECT durable.call('counter', '$id_w1', 'call', '{\"other\": \"$id_w2\"}')" -v VERBOSITY=verbose)
[[ $out == *0A000*"lives on another node"* ]] && ok "call_between_nodes_refused" ||
    not_ok "call_between_nodes_refused" "$out"

# alarms: set on each worker's object, fired by that node's hosts
for id in "$id_w1" "$id_w2"; do on coord "SELECT durable.call('counter', '$id', 'alarm')" >/dev/null; done
fired=0
for _ in $(seq 100); do
    fired=$(on coord "SELECT count(*) FROM durable._storage WHERE key = 'alarm_node'
                         AND id IN ('$id_w1', '$id_w2') AND value::int = node_of(id)")
    [ "$fired" = 2 ] && break
    sleep 0.1
done
[ "$fired" = 2 ] && [ "$(on coord "SELECT count(*) FROM durable._alarms")" = 0 ] &&
    ok "alarms_per_node" || not_ok "alarms_per_node" "$fired of 2 fired on their node"

# sends: from the coordinator, alone (Citus routes it) and in a transaction block (a row in the
# object's shard, found by its node's next look: up to 10 s); each runs once, on its node
on coord "SELECT durable.send('counter', '$id_w1', 'mark')" >/dev/null
on coord "BEGIN; SELECT durable.send('counter', '$id_w2', 'mark'); SELECT durable.send('counter', '$id_w1', 'mark'); COMMIT" >/dev/null
on coord "BEGIN; SELECT durable.send('counter', '$id_w2', 'mark'); ROLLBACK" >/dev/null
done_=0
for _ in $(seq 150); do
    done_=$(on coord "SELECT count(*) FROM durable._outbox")
    [ "$done_" = 0 ] && break
    sleep 0.1
done
marks=$(on coord "SELECT string_agg(id || '=' || value::text, ' ' ORDER BY id) FROM durable._storage
                   WHERE key = 'marks' AND id IN ('$id_w1', '$id_w2')")
nodes_ok=$(on coord "SELECT bool_and(value::int = node_of(id)) FROM durable._storage
                      WHERE key = 'mark_node' AND id IN ('$id_w1', '$id_w2')")
want=$(printf '%s\n' "$id_w1=2" "$id_w2=1" | sort | tr '\n' ' ' | sed 's/ $//')
[ "$done_" = 0 ] && [ "$marks" = "$want" ] && [ "$nodes_ok" = t ] &&
    ok "sends_per_node" || not_ok "sends_per_node" "outbox $done_, marks $marks (want $want), on their node: $nodes_ok"

# drop_class on the coordinator: gone everywhere, with its data
on coord "SELECT durable.drop_class('counter', drop_data => true)" >/dev/null
left=$(for node in coord w1 w2; do on "$node" "SELECT count(*) FROM durable._classes"; done | tr '\n' ' ')
rows=$(on coord "SELECT (SELECT count(*) FROM durable._storage) + (SELECT count(*) FROM durable._alarms)")
[ "$left" = "0 0 0 " ] && [ "$rows" = 0 ] && ok "drop_class_everywhere" ||
    not_ok "drop_class_everywhere" "classes per node: $left; rows left: $rows"

# no host ran a distributed scan (Citus refuses FOR UPDATE across shards)
errs=$(cat "$dir"/*/server.log | grep -c 'could not look for due\|could not run distributed query')
[ "$errs" = 0 ] && ok "no_distributed_scan_errors" ||
    not_ok "no_distributed_scan_errors" "$(grep -h 'could not look for due\|could not run distributed' "$dir"/*/server.log | head -3)"
