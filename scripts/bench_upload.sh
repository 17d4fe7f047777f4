#!/usr/bin/env bash
# Upload throughput: regdrop (examples/upload_bench.rs, release) versus OpenSSH `sftp -b`
# `put` of the same random file to the same throwaway loopback sshd, directly and through
# a 50 ms RTT delay proxy (examples/fault_proxy.rs, the tests' fault proxy, 25 ms each way).
# Prints MiB/s, the ratio and peak RSS (/usr/bin/time -v).
#
# usage: scripts/bench_upload.sh [SIZE_MIB [DELAYED_SIZE_MIB [REPEAT]]]
#   defaults: 1024 MiB direct, 256 MiB through the delay proxy, 1 repeat.
# Needs: openssh-server (/usr/sbin/sshd), openssh-client (sftp), python3, /usr/bin/time.
# Runs as any user: the throwaway sshd runs as that user and serves that user's key login.
set -euo pipefail

SIZE_MIB=${1:-1024}
DELAY_MIB=${2:-256}
REPEAT=${3:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/regdrop-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && cargo build --release --example upload_bench --example fault_proxy >/dev/null 2>&1) || {
  echo "release build of examples/upload_bench and examples/fault_proxy failed" >&2; exit 1; }
bench="$root/target/release/examples/upload_bench"
proxy="$root/target/release/examples/fault_proxy"

. "$root/scripts/bench_lib.sh"
mkdir -p "$work/remote"
start_sshd
dport=$(free_port)
"$proxy" --listen "$dport" --upstream "$port" --delay-ms 25 >"$work/proxy.log" 2>&1 &
pids+=($!)
wait_port "$dport"
# OpenSSH's known_hosts for the proxy's port too (it forwards to the same sshd).
echo "[127.0.0.1]:$dport $(cut -d' ' -f1,2 "$work/host.pub")" >> "$work/known_hosts"

echo "creating ${SIZE_MIB} MiB random file ..."
head -c "$((SIZE_MIB))M" /dev/urandom > "$work/big"
head -c "$((DELAY_MIB))M" "$work/big" > "$work/small"
sum_big=$(sha256sum "$work/big" | cut -d' ' -f1)
sum_small=$(sha256sum "$work/small" | cut -d' ' -f1)

run_regdrop() { # port file sum -> "MiB/s RSS_MiB CPU_s"
  local p=$1 f=$2 s=$3 out
  sync # start with no dirty pages: earlier writes must not slow this run's disk
  out=$(RUST_LOG=regdrop::sftp::upload=debug NO_COLOR=1 /usr/bin/time -v -o "$work/time.txt" "$bench" 127.0.0.1 "$p" "$user" "$work/user" "$work/host.pub" "$work/remote" "$f" "$s" 2>"$work/bench.log")
  rm -f "$work/remote/"*
  # the fsync@openssh.com share of the time (OpenSSH's put does none)
  sed -E -n 's/.*fsync_secs=([0-9.]+).*/\1/p' "$work/bench.log" | head -1 | xargs printf "%.2f\n" > "$work/fsync.txt"
  echo "$(sed -E 's/.*MiB\/s=([0-9.]+).*/\1/' <<<"$out") $(rss "$work/time.txt") $(cpu "$work/time.txt") $(cat "$work/fsync.txt")"
}

run_sftp() { # port file -> "MiB/s RSS_MiB CPU_s"
  local p=$1 f=$2 t0 t1 bytes
  sync
  echo "put $f $work/remote/openssh.bin" > "$work/batch"
  bytes=$(stat -c %s "$f")
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" sftp -q -b "$work/batch" -P "$p" -i "$work/user" \
    -o UserKnownHostsFile="$work/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
    "$user@127.0.0.1" >/dev/null
  t1=$(date +%s.%N)
  cmp -s "$f" "$work/remote/openssh.bin" || { echo "sftp upload differs" >&2; exit 1; }
  rm -f "$work/remote/"*
  echo "$(python3 -c "print(f'{$bytes/1048576/($t1-$t0):.1f}')") $(rss "$work/time.txt") $(cpu "$work/time.txt")"
}

declare -A results=()
report() { # label size regdrop_line sftp_line
  local r rr rc rf s sr sc
  read -r r rr rc rf <<<"$3"; read -r s sr sc <<<"$4"
  results[$5]+="$r/$s "
  printf "%-20s %5s MiB  regdrop %6s MiB/s (RSS %5s MiB, CPU %5s s, fsync %5s s)  openssh sftp %6s MiB/s (RSS %5s MiB, CPU %5s s)  ratio %s\n" \
    "$1" "$2" "$r" "$rr" "$rc" "$rf" "$s" "$sr" "$sc" "$(python3 -c "print(f'{$r/$s:.2f}')")"
}

echo "regdrop tuning: ${REGDROP_CHANNELS:-default} channels, ${REGDROP_IN_FLIGHT:-default} in flight, chunk ${REGDROP_CHUNK:-default}"
sync
for i in $(seq 1 "$REPEAT"); do
  # Alternate who goes first: page-cache writeback of the previous run can linger.
  if (( i % 2 )); then
    r=$(run_regdrop "$port" "$work/big" "$sum_big"); s=$(run_sftp "$port" "$work/big")
  else
    s=$(run_sftp "$port" "$work/big"); r=$(run_regdrop "$port" "$work/big" "$sum_big")
  fi
  report "loopback #$i" "$SIZE_MIB" "$r" "$s" loopback
  report "50 ms RTT proxy #$i" "$DELAY_MIB" "$(run_regdrop "$dport" "$work/small" "$sum_small")" "$(run_sftp "$dport" "$work/small")" delayed
done
for k in loopback delayed; do
  python3 - "$k" ${results[$k]} <<'PY'
import statistics, sys
pairs = [tuple(map(float, p.split("/"))) for p in sys.argv[2:]]
r = statistics.median(p[0] for p in pairs); s = statistics.median(p[1] for p in pairs)
print(f"median {sys.argv[1]:9} regdrop {r:6.1f} MiB/s  openssh sftp {s:6.1f} MiB/s  ratio {r/s:.2f}  (n={len(pairs)})")
PY
done
echo "note: regdrop's time includes fsync@openssh.com of the remote file and its sidecar; sftp put does no fsync."
