#!/usr/bin/env bash
# PostgreSQL register benchmark: `regdrop extract` of technical_owners (dsv + age) from a
# PostgreSQL register against what an admin would script, `psql -c "\copy (SQL) to stdout"`
# piped into the `age` CLI, with exactly the SQL regdrop runs (`preview --sql`). Runs
# alternate; prints medians, the median pair ratio and peak RSS.
#
#   scripts/bench_pg.sh [VEHICLES] [RUNS] [WORKDIR]   (default 1000000, 3, a temp folder)
#   REGDROP=path/to/regdrop picks the binary (default target/release/regdrop).
#
# A throwaway PostgreSQL cluster (initdb + postgres of Debian's `postgresql`) runs on a free
# loopback port inside WORKDIR and is stopped at the end. As root the server runs as the
# `postgres` OS user. Needs: a release build (cargo build --release), postgresql, age,
# age-keygen, ssh-keygen, /usr/bin/time.
#
# COPY's delimiter must be one byte, so psql writes its default tab-separated text format
# (regdrop writes `¤`-separated dsv with a header): the same rows and about the same bytes.
set -euo pipefail
N=${1:-1000000}
RUNS=${2:-3}
W=${3:-$(mktemp -d)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${REGDROP:-$ROOT/target/release/regdrop}
. "$ROOT/scripts/bench_lib.sh"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -q)
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "needs postgresql (apt-get install postgresql)"; exit 1; }
mkdir -p "$W/subs"
pids=()
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# The server is stopped by pg_ctl (a signal to runuser does not reach it).
cleanup() {
  [ -f "$W/pg/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$W/pg" -m fast -w stop > /dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The cluster.
PGPORT=$(free_port)
if [ ! -d "$W/pg" ]; then
  mkdir -p "$W/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres "$W/pg" && chmod 755 "$W"
  as_pg "$PGBIN/initdb" -D "$W/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 > "$W/initdb.log"
fi
as_pg "$PGBIN/postgres" -D "$W/pg" -p "$PGPORT" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$W/pg" -c shared_buffers=256MB -c fsync=off \
  -c max_wal_size=4GB > "$W/pg.log" 2>&1 &
pids+=($!)
wait_port "$PGPORT"
URL="postgresql://postgres@127.0.0.1:$PGPORT/bench"
PSQL=(psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres)
"${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 \
  || "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"

rm -f "$W/id.txt" "$W/hk" "$W/hk.pub"
age-keygen -o "$W/id.txt" 2>/dev/null
REC=$(age-keygen -y "$W/id.txt")
HOSTKEY=$(ssh-keygen -q -t ed25519 -N '' -f "$W/hk" <<<y >/dev/null 2>&1; cut -d' ' -f1,2 "$W/hk.pub")
cat > "$W/regdrop.toml" <<TOML
register = "$URL"
spool_dir = "spool"
state_db = "state.sqlite"
subscriptions_dir = "subs"
TOML
cat > "$W/subs/owners-dsv.toml" <<TOML
id = "owners-dsv"
customer = "Bench"
legal_basis = "benchmark"
[schedule]
cron = "@daily"
[target]
host = "127.0.0.1"
username = "bench"
host_keys = ["$HOSTKEY"]
auth = { key_file = "none" }
remote_dir = "/in"
[extract]
report = "technical_owners"
format = "dsv"
[encryption]
recipients = ["$REC"]
TOML

have=0
if [ "$("${PSQL[@]}" -d bench -tAc "SELECT to_regclass('vehicle') IS NOT NULL")" = t ]; then
  have=$("${PSQL[@]}" -d bench -tAc "SELECT count(*) FROM vehicle")
fi
if [ "$have" != "$N" ]; then
  echo "== register generate --vehicles $N into PostgreSQL"
  /usr/bin/time -v "$BIN" --config "$W/regdrop.toml" register generate --vehicles "$N" --seed 1 2> "$W/gen.time" | tail -1
  echo "generate: $(wall "$W/gen.time") s, peak RSS $(rss "$W/gen.time") MiB"
fi

echo "== technical_owners, dsv + age: regdrop extract vs psql \\copy | age ($RUNS runs each, alternating)"
SQL=$("$BIN" --config "$W/regdrop.toml" preview owners-dsv --sql)
SQL=${SQL%;}
: > "$W/pairs"
for i in $(seq 1 "$RUNS"); do
  sync
  /usr/bin/time -v "$BIN" --config "$W/regdrop.toml" extract owners-dsv --out "$W/regdrop.age" > "$W/regdrop.out" 2> "$W/regdrop.time"
  sync
  /usr/bin/time -v sh -c "psql -X -q -h 127.0.0.1 -p $PGPORT -U postgres -d bench -c \"\\\\copy (\$1) to stdout\" | age -r '$REC' > '$W/psql.age'" sh "$SQL" 2> "$W/psql.time"
  r=$(wall "$W/regdrop.time"); p=$(wall "$W/psql.time")
  echo "run $i: regdrop ${r} s (peak RSS $(rss "$W/regdrop.time") MiB), psql | age ${p} s (largest child's peak RSS $(rss "$W/psql.time") MiB)"
  echo "$r $p" >> "$W/pairs"
done
rows=$(grep '^rows:' "$W/regdrop.out" | awk '{print $2}')
prows=$(age -d -i "$W/id.txt" "$W/psql.age" | wc -l)
echo "rows: regdrop $rows, psql $prows; plaintext bytes: regdrop $(grep '^plaintext bytes' "$W/regdrop.out" | awk '{print $3}'), psql $(age -d -i "$W/id.txt" "$W/psql.age" | wc -c)"
median_pairs "regdrop" "psql|age" "s" < "$W/pairs"
echo "(<= 1.0x means regdrop is not slower than psql | age)"
rm -f "$W/regdrop.age" "$W/psql.age"
echo "(work folder: $W; remove it when done)"
