#!/bin/sh
# bench-postgres (make bench-postgres): agentbench against agentd on bbolt,
# on PostgreSQL with one instance, and on PostgreSQL with two instances
# sharing the database, in one run, with the same arguments (BENCH_ARGS).
# The PostgreSQL server is a private one (internal/pgtest/pgserve) with
# fsync on, as durable as bbolt. Expects bin/agentd, bin/agentbench and
# bin/pgserve (the make target builds them). BENCH_RUNS picks the runs
# (default "bolt pg1 pg2").
set -eu
ARGS=${BENCH_ARGS:-}
RUNS=${BENCH_RUNS:-bolt pg1 pg2}
want() { case " $RUNS " in *" $1 "*) return 0 ;; esac; return 1; }
PORT=${BENCH_PORT:-18089}
PORT2=$((PORT + 1))
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	exec 3>&- 2>/dev/null || true
	sleep 1
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
export AGENTD_MEDIATOR=true AGENTD_CLIENT_RATE=0 AGENTD_HTTP_MAX_CONNECTIONS=0 AGENTD_HTTP_MAX_CONNECTIONS_PER_IP=0 AGENTD_HTTP_MAX_WEBSOCKETS_PER_IP=0

agentd() { # agentd NAME PORT [FLAGS...]: starts an instance in the background
	name=$1 port=$2
	shift 2
	bin/agentd --data-dir "$tmp/$name" --http-addr "127.0.0.1:$port" --public-url "http://127.0.0.1:$PORT/didcomm" --log-level warn "$@" >/dev/null 2>"$tmp/$name.log" &
	last=$!
	pids="$pids $last"
}

echo "== load: $(uptime)"
if want bolt; then
	echo
	echo "== bbolt, one instance"
	agentd bolt "$PORT"
	bin/agentbench -url "http://127.0.0.1:$PORT" -pid "$last" -bolt-file "$tmp/bolt/agentd.db" $ARGS
	kill "$last"; wait "$last" || true
fi

mkfifo "$tmp/pgin"
AGENTD_PGTEST_FSYNC=on bin/pgserve one two <"$tmp/pgin" >"$tmp/pg.out" 2>&1 &
pg=$!
exec 3>"$tmp/pgin"
i=0
until grep -q '^ready$' "$tmp/pg.out"; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 $pg 2>/dev/null; then echo "pgserve did not start:"; cat "$tmp/pg.out"; exit 1; fi
	sleep 0.1
done
one=$(sed -n 1p "$tmp/pg.out")
two=$(sed -n 2p "$tmp/pg.out")

if want pg1; then
	echo
	echo "== PostgreSQL (fsync on), one instance"
	AGENTD_DATABASE_URL=$one agentd pg1 "$PORT" --store-driver postgres
	bin/agentbench -url "http://127.0.0.1:$PORT" -pid "$last" -database-url "$one" $ARGS
	kill "$last"; wait "$last" || true
fi

want pg2 || exit 0
echo
echo "== PostgreSQL (fsync on), two instances on one database"
AGENTD_DATABASE_URL=$two agentd pgA "$PORT" --store-driver postgres
a=$last
i=0
until [ -f "$tmp/pgA/master.key" ] && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 300 ] && { echo "instance A did not start:"; cat "$tmp/pgA.log"; exit 1; }
	sleep 0.1
done
AGENTD_DATABASE_URL=$two agentd pgB "$PORT2" --store-driver postgres --key-file "$tmp/pgA/master.key"
bin/agentbench -url "http://127.0.0.1:$PORT,http://127.0.0.1:$PORT2" -pid "$a" -database-url "$two" $ARGS
