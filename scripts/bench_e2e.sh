#!/usr/bin/env bash
# One delivery end to end: `regdrop deliver` of a `technical_owners` dsv subscription to a
# throwaway loopback OpenSSH sshd, against the pipeline an admin would script for the same
# job: `sqlite3 -header -separator '¤' REGISTER "SQL" | age -r KEY > f.age`, `sha256sum`,
# and `sftp -b` put of the file and its .sha256 under temporary names + rename. Alternating
# who goes first, ROUNDS pairs; prints each round, the medians, the per-pair ratios and the
# peak RSS of each (/usr/bin/time -v; for the DIY pipeline the largest of its processes).
# The first round checks that both files decrypt to the same plaintext.
#
# usage: scripts/bench_e2e.sh [VEHICLES [ROUNDS [CACHE_DIR]]]
#   defaults: 1000000 vehicles, 3 rounds, registers cached in $TMPDIR/regdrop-bench-registers
#   (`register generate --vehicles N --seed 1`, kept between runs; delete it when done).
# Needs: a release build (built if missing), openssh-server (/usr/sbin/sshd), openssh-client
# (sftp), sqlite3, age, age-keygen, python3, /usr/bin/time.
# regdrop's delivery also fsyncs the remote file (fsync@openssh.com) and reads nothing
# back; `sftp put` does no fsync. The fan-out case (N subscriptions sharing one scan) is
# not here yet: it needs shared scans (issue 12, item 1).
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
echo "note: wall-clock figures on a shared machine swing; compare the pair ratios of one run."
