#!/usr/bin/env bash
# Upload throughput per SFTP server: regdrop against OpenSSH's `sftp -b` `put` of the same
# random file to the same server, for every server of the interop suite (OpenSSH
# internal-sftp, ProFTPD mod_sftp, rclone serve sftp in both VFS modes, asyncssh), on
# loopback. Runs the interop case `regdrop_and_openssh_sftp_put_the_same_bytes` in a
# release build with a large file, REPEAT times with the order swapped every other time,
# and prints each server's median MiB/s for both and the median of the pair ratios.
# regdrop's time includes fsync (where offered) and the .sha256 sidecar; sftp's does not.
#
# usage: scripts/bench_upload_servers.sh [SIZE_MIB [REPEAT]]   (defaults 256, 3)
# Needs what the interop suite needs (scripts/test installs it); as root for the ProFTPD
# rows (ProFTPD needs root; as another user its rows are missing).
set -euo pipefail
SIZE_MIB=${1:-256}
REPEAT=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp "${TMPDIR:-/tmp}/regdrop-bench-servers.XXXXXX")
trap 'rm -f "$out"' EXIT
cd "$root"
cargo test --release --test it --no-run >/dev/null 2>&1 || {
  echo "release build of the interop suite failed" >&2; exit 1; }
for i in $(seq 1 "$REPEAT"); do
  if [ $((i % 2)) -eq 0 ]; then first=1; else first=; fi
  REGDROP_BENCH_MIB=$SIZE_MIB REGDROP_BENCH_SFTP_FIRST=$first \
    cargo test --release --test it interop::regdrop_and_openssh_sftp_put_the_same_bytes \
    -- --test-threads=1 --nocapture 2>/dev/null | grep -o 'BENCH .*' | tee -a "$out"
done
echo
echo "median of $REPEAT runs, $SIZE_MIB MiB, loopback:"
python3 - "$out" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r'BENCH server="([^"]+)" mib=\d+ regdrop_mib_s=([\d.]+) sftp_mib_s=([\d.]+) ratio=([\d.]+)', line)
    if m:
        runs.setdefault(m[1], []).append(tuple(float(x) for x in m.groups()[1:]))
print(f'| server | regdrop MiB/s | OpenSSH sftp MiB/s | ratio (median of pairs) |')
print(f'|---|---|---|---|')
for name, r in runs.items():
    med = lambda k: statistics.median(x[k] for x in r)
    print(f'| {name} | {med(0):.1f} | {med(1):.1f} | {med(2):.2f}x |')
PY
