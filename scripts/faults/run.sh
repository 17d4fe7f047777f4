#!/usr/bin/env bash
# The fault campaign (issue 9) at size N: N deliveries with connection cuts at uniformly
# random byte offsets, KILLS kill -9 of the daemon at random moments (default N/2), N
# corrupt/truncated registers, up to 30 tampered spool files, 100*N mutated subscription
# files through `check` and daemon start, server down/up, wrong host and user key, a full
# spool and a full server disk. Real sshd, SQLite, age and binary (tests/it/failure_paths/campaign.rs).
# Prints the figures (FAULTS lines) and exits non-zero on any violation.
#
#   scripts/faults/run.sh [N [KILLS [SEED]]]      # e.g. scripts/faults/run.sh 100 50
#
# Needs openssh-server, age, sqlite3 (scripts/test installs them). As root it also runs the
# full-spool and full-server-disk scenarios (small tmpfs mounts); as another user those
# are skipped (it says so).
# The short version (N = 4) runs in the normal test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100}
KILLS=${2:-$(( N / 2 ))}
SEED=${3:-7}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
REGDROP_FAULTS_N=$N REGDROP_FAULTS_KILLS=$KILLS REGDROP_FAULTS_SEED=$SEED \
  cargo test --release --locked --test it failure_paths::campaign:: -- --nocapture >"$log" 2>&1 || status=$?
grep -E '^(FAULTS|VIOLATION|skipped:)' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "fault campaign: FAILED (exit $status); the full log:" >&2
  tail -n 60 "$log" >&2
fi
exit "$status"
