#!/usr/bin/env bash
# One delivery end to end: `regdrop deliver` of a `technical_owners` dsv subscription to a
# throwaway loopback OpenSSH sshd, against the pipeline an admin would script for the same
# job: `sqlite3 -header -separator '¤' REGISTER "SQL" | age -r KEY > f.age`, `sha256sum`,
# and `sftp -b` put of the file and its .sha256 under temporary names + rename. Alternating
# who goes first, ROUNDS pairs; prints each round, the medians, the per-pair ratios and the
# peak RSS of each (/usr/bin/time -v; for the DIY pipeline the largest of its processes).
# The first round checks that both files decrypt to the same plaintext.
#
# Then the fan-out case (FANOUT subscriptions, default 20, 0 skips it): FANOUT identical
# subscriptions, each with its own age key and remote folder, fire at the same minute in
# the `regdrop run` daemon (default limits: 4 at once, 2 per host) and share one scan;
# against FANOUT DIY pipelines as above, one after the other, each with its own key. Wall
# time from the fire to the last receipt (polled every 0.25 s), CPU and peak RSS of the
# daemon process against the DIY loop's; f1's file and the last DIY file decrypt to the
# same plaintext, every receipt states it, every delivered file has its receipt's size
# (and is removed once checked: 2 x 20 files of 498 MB would not fit beside the spool).
#
# usage: scripts/bench_e2e.sh [VEHICLES [ROUNDS [CACHE_DIR]]]   (FANOUT=N in the environment)
#   PERF=FILE records the fan-out system-wide (`perf record -e cpu-clock -F 499 -g -a`,
#   sshd and the kernel too) from the daemon's start to the last receipt into FILE, for
#   `perf report -i FILE --sort comm,dso,sym`; FANOUT_DIY=0 skips the N DIY pipelines.
#   defaults: 1000000 vehicles, 3 rounds, registers cached in $TMPDIR/regdrop-bench-registers
#   (`register generate --vehicles N --seed 1`, kept between runs; delete it when done).
# Needs: a release build (built if missing), openssh-server (/usr/sbin/sshd), openssh-client
# (sftp), sqlite3, age, age-keygen, python3, /usr/bin/time.
# regdrop's delivery also fsyncs the remote file (fsync@openssh.com) and reads nothing
# back; `sftp put` does no fsync.
set -euo pipefail

N=${1:-1000000}
ROUNDS=${2:-3}
CACHE=${3:-${TMPDIR:-/tmp}/regdrop-bench-registers}
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${REGDROP:-$root/target/release/regdrop}
[ -x "$BIN" ] || (cd "$root" && cargo build --release --locked -q)
for c in sqlite3 age age-keygen sftp /usr/sbin/sshd /usr/bin/time python3; do
  command -v "$c" >/dev/null || { echo "bench_e2e needs $c" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/regdrop-bench-e2e.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
. "$root/scripts/bench_lib.sh"

# The register, generated once per size and kept.
mkdir -p "$CACHE"
REG="$CACHE/register-$N.sqlite"
if [ ! -f "$REG" ]; then
  echo "generating a register of $N vehicles into $REG (cached for later runs) ..."
  printf 'register = "%s"\nspool_dir = "%s/spool"\nstate_db = "%s/gen.sqlite"\n' "$REG.tmp" "$work" "$work" > "$work/gen.toml"
  rm -f "$REG.tmp"
  "$BIN" --config "$work/gen.toml" register generate --vehicles "$N" --seed 1 | tail -1
  mv "$REG.tmp" "$REG"
fi

mkdir -p "$work/remote" "$work/subs"
start_sshd
age-keygen -o "$work/age.txt" 2>/dev/null
REC=$(age-keygen -y "$work/age.txt")
cat > "$work/regdrop.toml" <<TOML
register = "$REG"
spool_dir = "$work/spool"
state_db = "$work/state.sqlite"
subscriptions_dir = "$work/subs"
TOML
cat > "$work/subs/e2e.toml" <<TOML
id = "e2e"
customer = "Bench"
legal_basis = "benchmark"
[schedule]
cron = "@daily"
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
TOML
SQL=$("$BIN" --config "$work/regdrop.toml" preview e2e --sql)
printf '%s' "$SQL" > "$work/query.sql"

# The admin's script: extract, encrypt, checksum, upload both under temporary names, rename.
cat > "$work/diy.sh" <<'SH'
#!/bin/sh
set -e
w=$1
sqlite3 -header -separator '¤' "$2" "$(cat "$w/query.sql")" | age -r "$3" > "$w/diy.dsv.age"
(cd "$w" && sha256sum diy.dsv.age > diy.dsv.age.sha256)
cat > "$w/batch" <<B
put $w/diy.dsv.age $w/remote/.diy.dsv.age.part
rename $w/remote/.diy.dsv.age.part $w/remote/diy.dsv.age
put $w/diy.dsv.age.sha256 $w/remote/.diy.dsv.age.sha256.part
rename $w/remote/.diy.dsv.age.sha256.part $w/remote/diy.dsv.age.sha256
B
sftp -q -b "$w/batch" -P "$4" -i "$w/user" -o UserKnownHostsFile="$w/known_hosts" \
  -o StrictHostKeyChecking=yes -o BatchMode=yes "$5@127.0.0.1" >/dev/null
SH

run_regdrop() { # -> "wall_s rss_mib cpu_s upload_s fsync_s tail_s"
  rm -rf "$work/spool" "$work/state.sqlite"* "$work/remote/e2e_"*
  sync
  REGDROP_LOG=info,regdrop::sftp::upload=debug NO_COLOR=1 \
  /usr/bin/time -v -o "$work/regdrop.time" "$BIN" --config "$work/regdrop.toml" deliver e2e \
    > "$work/regdrop.out" 2> "$work/regdrop.err" || { cat "$work/regdrop.err" >&2; exit 1; }
  # From the log: the upload (connecting to the commit; uploading while sealing, most of
  # it overlaps the sealing), its remote fsync, and what it added after the sealing ended.
  local up fs tl
  up=$(sed -E -n 's/.*sftp::upload(::stream)?: Delivery succeeded.* secs=([0-9.]+).*/\2/p' "$work/regdrop.err" | tail -1)
  fs=$(sed -E -n 's/.*fsync_secs=([0-9.]+).*/\1/p' "$work/regdrop.err" | head -1)
  tl=$(sed -E -n 's/.*Uploaded while sealing.* after_sealing_secs=([0-9.]+).*/\1/p' "$work/regdrop.err" | tail -1)
  [ -n "$tl" ] || tl=${up:-0}
  echo "$(wall "$work/regdrop.time") $(rss "$work/regdrop.time") $(cpu "$work/regdrop.time") ${up:-0} ${fs:-0} $tl"
}
run_diy() { # -> "wall_s rss_mib cpu_s"
  rm -f "$work/diy.dsv.age"* "$work/remote/"*diy.dsv.age*
  sync
  /usr/bin/time -v -o "$work/diy.time" sh "$work/diy.sh" "$work" "$REG" "$REC" "$port" "$user" \
    || { echo "the DIY pipeline failed" >&2; exit 1; }
  echo "$(wall "$work/diy.time") $(rss "$work/diy.time") $(cpu "$work/diy.time")"
}
plain_sha() { age -d -i "$work/age.txt" "$1" | sha256sum | cut -c1-64; }

if [ "$ROUNDS" -gt 0 ]; then
echo "one delivery, technical_owners dsv + age, $N vehicles, loopback OpenSSH sshd, $ROUNDS rounds ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
: > "$work/walls"; : > "$work/rss"
for i in $(seq 1 "$ROUNDS"); do
  if (( i % 2 )); then r=$(run_regdrop); d=$(run_diy); else d=$(run_diy); r=$(run_regdrop); fi
  if [ "$i" -eq 1 ]; then
    f=$(find "$work/remote" -name 'e2e_*.age' | head -1)
    [ -n "$f" ] || { echo "regdrop delivered no .age file" >&2; exit 1; }
    a=$(plain_sha "$f"); b=$(plain_sha "$work/remote/diy.dsv.age")
    [ "$a" = "$b" ] || { echo "plaintexts differ: regdrop $a, DIY $b" >&2; exit 1; }
    echo "same plaintext: yes (sha256 $a, $(stat -c %s "$f") bytes sealed)"
  fi
  read -r rw rr rc ru rf rt <<<"$r"; read -r dw dr dc <<<"$d"
  printf "round %d: regdrop %6.2f s (upload %5.2f s, %5.2f s of it after the sealing, remote fsync %5.2f s; CPU %6.2f s, RSS %5.1f MiB)  DIY %6.2f s (CPU %6.2f s, RSS %5.1f MiB)  ratio %.2fx\n" \
    "$i" "$rw" "$ru" "$rt" "$rf" "$rc" "$rr" "$dw" "$dc" "$dr" "$(python3 -c "print($rw/$dw)")"
  echo "$rw $dw" >> "$work/walls"; echo "$rr $dr" >> "$work/rss"
done
median_pairs regdrop DIY s < "$work/walls"
echo "peak RSS (max over rounds): regdrop $(sort -n -k1 "$work/rss" | tail -1 | cut -d' ' -f1) MiB, DIY $(sort -n -k2 "$work/rss" | tail -1 | cut -d' ' -f2) MiB (largest process)"
fi

FANOUT=${FANOUT:-20}
if [ "$FANOUT" -gt 0 ]; then
  f="$work/fan"
  rm -rf "$work/spool" "$work/remote/"*
  mkdir -p "$f/subs"
  # The minute all of them fire at (UTC), at least 15 s away.
  at=$(python3 -c 'import time; t=int(time.time())+15; print((t//60+1)*60)')
  cron="$(date -u -d "@$at" +'%M %H') * * *"
  for k in $(seq 1 "$FANOUT"); do
    age-keygen -o "$f/k$k.txt" 2>/dev/null
    age-keygen -y "$f/k$k.txt" > "$f/k$k.rec"
    mkdir -p "$f/remote/f$k"
    sed -e "s/^id = .*/id = \"f$k\"/" -e "s|^cron = .*|cron = \"$cron\"|" \
        -e "s|^remote_dir = .*|remote_dir = \"$f/remote/f$k\"|" \
        -e "s|^recipients = .*|recipients = [\"$(cat "$f/k$k.rec")\"]|" \
        "$work/subs/e2e.toml" > "$f/subs/f$k.toml"
  done
  cat > "$f/regdrop.toml" <<TOML
register = "$REG"
spool_dir = "$f/spool"
state_db = "$f/state.sqlite"
subscriptions_dir = "$f/subs"
[defaults]
timezone = "UTC"
TOML
  echo "fan-out: $FANOUT identical subscriptions (own key, own folder) firing at $(date -u -d "@$at" +%H:%M:%S) in the daemon ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
  sync
  REGDROP_LOG=info NO_COLOR=1 /usr/bin/time -v -o "$f/daemon.time" "$BIN" --config "$f/regdrop.toml" run \
    > /dev/null 2> "$f/daemon.err" &
  dpid=$!
  pids+=($dpid)
  if [ -n "${PERF:-}" ]; then
    # From the fire (the daemon idles until then) to the last receipt.
    (sleep "$(python3 -c "import time; print(max(0, $at - time.time()))")"
     exec perf record -q -e cpu-clock -F 499 -g -a -o "$PERF") 2>"$f/perf.err" &
    ppid=$!
    pids+=($ppid)
  fi
  done_at=""
  while [ -z "$done_at" ]; do
    sleep 0.25
    kill -0 "$dpid" 2>/dev/null || { cat "$f/daemon.err" >&2; echo "the daemon stopped" >&2; exit 1; }
    n=$(sqlite3 "$f/state.sqlite" 'SELECT count(*) FROM receipts' 2>/dev/null || echo 0)
    [ "$n" -ge "$FANOUT" ] && done_at=$(date +%s.%N)
    # Disk: 20 sealed spool files and 20 delivered copies are 2 x 10 GB at 1M vehicles.
    # A delivered member's remote files go once its receipt is in and the file there has
    # the size it states (f1's stay for the plaintext check below).
    sqlite3 -separator ' ' "$f/state.sqlite" 'SELECT subscription, bytes FROM receipts' 2>/dev/null |
      while read -r sub bytes; do
        [ "$sub" = f1 ] || [ -e "$f/pruned.$sub" ] && continue
        file=$(find "$f/remote/$sub" -name '*.age' | head -1)
        [ "$(stat -c %s "$file")" = "$bytes" ] || { echo "fan-out: $sub's $file is not $bytes bytes" >&2; touch "$f/bad"; }
        rm -f "$f/remote/$sub/"*; touch "$f/pruned.$sub"
      done
    [ "$(python3 -c "import time; print(int(time.time() > $at + 1800))")" = 1 ] && { echo "fan-out: no $FANOUT receipts after 30 minutes" >&2; exit 1; }
  done
  if [ -n "${PERF:-}" ]; then
    kill -INT "$ppid" 2>/dev/null || true
    wait "$ppid" || true
    echo "perf: recorded from the fire to the last receipt into $PERF"
  fi
  # /usr/bin/time is the parent of the daemon: signal the daemon itself.
  kill -TERM "$(pgrep -P "$dpid")" 2>/dev/null || true
  wait "$dpid" || true
  rw=$(python3 -c "print(round($done_at - $at, 2))")
  rc=$(cpu "$f/daemon.time"); rr=$(rss "$f/daemon.time")
  scans=$(grep -c 'Shared scan sealed' "$f/daemon.err" || true)
  # Seconds after the fire of the first daemon log line with $1 (its timestamp).
  t_of() {
    grep -m1 "$1" "$f/daemon.err" | cut -d' ' -f1 | python3 -c "
import sys, datetime
s = sys.stdin.read().strip()
print(round(datetime.datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp() - $at, 2) if s else 'none')"
  }
  streamed=$(grep -c 'Uploading while the shared scan seals' "$f/daemon.err" || true)
  echo "fan-out timeline (s after the fire): scan started $(t_of 'Shared scan started'), first upload started $(t_of 'Delivery starting'), scan sealed $(t_of 'Shared scan sealed'); runs that uploaded while it sealed: $streamed"
  [ ! -e "$f/bad" ] || exit 1
  # f1's file decrypts to the solo plaintext's hash; every member's receipt states that
  # plaintext hash (the others' files were checked for size and removed above).
  one=$(age -d -i "$f/k1.txt" "$(find "$f/remote/f1" -name '*.age' | head -1)" | sha256sum | cut -c1-64)
  odd=$(sqlite3 "$f/state.sqlite" "SELECT count(*) FROM receipts WHERE plaintext_sha256 != '$one'")
  [ "$odd" = 0 ] || { echo "fan-out: $odd receipts state another plaintext than f1's $one" >&2; exit 1; }
  rm -rf "$f/spool" "$f/remote"
  if [ "${FANOUT_DIY:-1}" = 0 ]; then
    printf "fan-out %d: regdrop daemon %7.2f s fire to last receipt (CPU %7.2f s, RSS %6.1f MiB); shared scans: %s; DIY skipped (FANOUT_DIY=0)\n" \
      "$FANOUT" "$rw" "$rc" "$rr" "$scans"
    exit 0
  fi
  cat > "$f/diy_all.sh" <<'SH'
#!/bin/sh
# FANOUT admin pipelines, one after the other, each to its own key and file.
set -e
w=$1; f=$w/fan
for k in $(seq 1 "$6"); do
  sh "$w/diy.sh" "$w" "$2" "$(cat "$f/k$k.rec")" "$4" "$5"
  # Only the last one is kept (disk), for the plaintext check.
  if [ "$k" = "$6" ]; then mv "$w/remote/diy.dsv.age" "$w/remote/diy$k.dsv.age"; else rm -f "$w/remote/diy.dsv.age"; fi
  rm -f "$w/remote/diy.dsv.age.sha256"
done
SH
  rm -f "$work/remote/"*
  sync
  /usr/bin/time -v -o "$f/diy.time" sh "$f/diy_all.sh" "$work" "$REG" "" "$port" "$user" "$FANOUT" \
    || { echo "the DIY pipelines failed" >&2; exit 1; }
  dw=$(wall "$f/diy.time"); dc=$(cpu "$f/diy.time"); dr=$(rss "$f/diy.time")
  [ "$(age -d -i "$f/k$FANOUT.txt" "$work/remote/diy$FANOUT.dsv.age" | sha256sum | cut -c1-64)" = "$one" ] \
    || { echo "fan-out: the DIY file decrypts to another plaintext" >&2; exit 1; }
  rm -f "$work/remote/"*
  echo "same plaintext: yes, f1's file, all $FANOUT receipts and the last DIY file (sha256 $one); shared scans: $scans"
  printf "fan-out %d: regdrop daemon %7.2f s fire to last receipt (CPU %7.2f s, RSS %6.1f MiB)  DIY %7.2f s (CPU %7.2f s, RSS %5.1f MiB)  ratio %.3fx\n" \
    "$FANOUT" "$rw" "$rc" "$rr" "$dw" "$dc" "$dr" "$(python3 -c "print($rw/$dw)")"
fi
echo "note: wall-clock figures on a shared machine swing; compare the pair ratios of one run."
