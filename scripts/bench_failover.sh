#!/usr/bin/env bash
# Fail-over time of two nodes on one state store: node A (`regdrop deliver`, named node-a)
# works on a run; while it holds the run's lease it is killed with SIGKILL; node B (a
# `regdrop run` daemon, node-b, same subscriptions, spool of its own) takes the run over
# once A's lease expired and delivers it. Prints, per round, the seconds from the kill to
# B's claim (the take-over: lease expiry + B's look every half lease) and to the receipt
# (B regenerates: A's artifact is in A's spool), then the medians and lease_secs.
#
# usage: scripts/bench_failover.sh [LEASE_SECS [ROUNDS [VEHICLES]]]
#   defaults: lease 5 s, 5 rounds, 200000 vehicles (a run of a few seconds).
# State store: a shared SQLite file. Needs: a release build (built if missing),
# openssh-server (/usr/sbin/sshd), sqlite3, age-keygen, python3.
set -euo pipefail

LEASE=${1:-5}
ROUNDS=${2:-5}
N=${3:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${REGDROP:-$root/target/release/regdrop}
[ -x "$BIN" ] || (cd "$root" && cargo build --release --locked -q)
for c in sqlite3 age-keygen /usr/sbin/sshd python3; do
  command -v "$c" >/dev/null || { echo "bench_failover needs $c" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/regdrop-bench-failover.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
. "$root/scripts/bench_lib.sh"

mkdir -p "$work/remote" "$work/subs" "$work/a" "$work/b"
start_sshd
age-keygen -o "$work/age.txt" 2>/dev/null
REC=$(age-keygen -y "$work/age.txt")
printf 'register = "%s/register.sqlite"\nspool_dir = "%s/gen-spool"\nstate_db = "%s/gen.sqlite"\n' "$work" "$work" "$work" > "$work/gen.toml"
"$BIN" --config "$work/gen.toml" register generate --vehicles "$N" --seed 1 | tail -1
STATE="$work/state.sqlite"
for n in a b; do
  cat > "$work/$n/regdrop.toml" <<TOML
register = "$work/register.sqlite"
spool_dir = "$work/$n/spool"
state_db = "$STATE"
subscriptions_dir = "$work/subs"
[defaults]
timezone = "UTC"
[daemon]
node = "node-$n"
lease_secs = $LEASE
shutdown_grace_secs = 2
TOML
done
# Never fires by itself (1 January, no catch-up): runs come from `deliver` on node A.
cat > "$work/subs/fo.toml" <<TOML
id = "fo"
customer = "Bench"
legal_basis = "benchmark"
[schedule]
cron = "0 0 1 1 *"
catch_up = "skip"
[target]
host = "127.0.0.1"
port = $port
username = "$user"
host_keys = ["$(cut -d' ' -f1,2 "$work/host.pub")"]
auth = { key_file = "$work/user" }
remote_dir = "$work/remote"
[extract]
report = "technical_owners"
format = "dsv"
[encryption]
recipients = ["$REC"]
[retry]
base_secs = 1
factor = 1.0
cap_secs = 1
TOML

"$BIN" --config "$work/b/regdrop.toml" run 2> "$work/b.log" &
pids+=($!)
q() { sqlite3 -cmd ".timeout 5000" "$STATE" "$1"; }
now() { date +%s.%N; }
for _ in $(seq 1 100); do [ -f "$STATE" ] && q "SELECT 1 FROM runs LIMIT 1" >/dev/null 2>&1 && break; sleep 0.1; done

echo "fail-over: kill -9 of the node holding a run, lease_secs = $LEASE, $N vehicles technical_owners, $ROUNDS rounds ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
: > "$work/figures"
for i in $(seq 1 "$ROUNDS"); do
  "$BIN" --config "$work/a/regdrop.toml" deliver fo > "$work/a-$i.out" 2>&1 &
  a=$!
  run=""
  for _ in $(seq 1 600); do
    run=$(q "SELECT id FROM runs WHERE lease_node = 'node-a' AND state IN ('pending','generated','sealed','uploading') AND lease_until IS NOT NULL LIMIT 1" || true)
    [ -n "$run" ] && break
    sleep 0.05
  done
  [ -n "$run" ] || { echo "node A never held a run" >&2; cat "$work/a-$i.out" >&2; exit 1; }
  sleep 1
  state=$(q "SELECT state FROM runs WHERE id = '$run'")
  kill -9 "$a"; t0=$(now); wait "$a" 2>/dev/null || true
  claimed=""; done_at=""
  for _ in $(seq 1 2400); do
    if [ -z "$claimed" ] && [ "$(q "SELECT lease_node FROM runs WHERE id = '$run'")" = "node-b" ]; then claimed=$(now); fi
    if [ "$(q "SELECT count(*) FROM receipts WHERE run_id = '$run'")" = "1" ]; then done_at=$(now); break; fi
    sleep 0.05
  done
  [ -n "$done_at" ] || { echo "no receipt for $run"; tail -30 "$work/b.log" >&2; exit 1; }
  by=$(q "SELECT delivered_by FROM runs WHERE id = '$run'")
  [ "$by" = "node-b" ] || { echo "run $run delivered by $by, not node-b" >&2; exit 1; }
  c=$(python3 -c "print(f'{${claimed:-$done_at} - $t0:.2f}')"); r=$(python3 -c "print(f'{$done_at - $t0:.2f}')")
  printf "round %d: run %s killed while %s; node-b claimed it after %5.2f s, receipt after %5.2f s\n" "$i" "$run" "$state" "$c" "$r"
  echo "$c $r" >> "$work/figures"
  # The next run of `deliver` gets a new fire time.
  sleep 1
done
python3 - "$work/figures" "$LEASE" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
c = statistics.median(r[0] for r in rows); d = statistics.median(r[1] for r in rows)
print(f"lease_secs {sys.argv[2]}: median of {len(rows)}: take-over (kill -> claim by the other node) {c:.2f} s, kill -> receipt {d:.2f} s")
PY
"$BIN" --config "$work/b/regdrop.toml" receipts verify | tail -1
