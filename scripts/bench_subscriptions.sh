#!/usr/bin/env bash
# How long 10,000 subscription files take to load and validate (`regdrop check`), and how
# long the daemon takes from start to READY with them (status file written).
# Usage: scripts/bench_subscriptions.sh [N]   (REGDROP=path/to/regdrop, default target/release/regdrop)
set -euo pipefail
n=${1:-10000}
bin=${REGDROP:-target/release/regdrop}
[ -x "$bin" ] || { echo "build first: cargo build --release (or set REGDROP=target/debug/regdrop)"; exit 1; }
bin=$(realpath "$bin")
dir=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/subs"
cat > "$dir/regdrop.toml" <<TOML
subscriptions_dir = "subs"
[defaults]
timezone = "Europe/Oslo"
TOML
for i in $(seq 1 "$n"); do
  cat > "$dir/subs/s$i.toml" <<TOML
id = "s$i"
customer = "Customer $i AS"
[schedule]
cron = "$((i % 60)) $((i % 24)) * * *"
catch_up = "once"
[target]
host = "sftp$((i % 50)).example"
username = "u$i"
host_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL8KQRoLcAyA3HjT2XTLV/KiImqim5ZNP9y7enr60/qj"]
auth = { key_file = "k$i" }
remote_dir = "/in"
[extract]
report = "technical"
filter = { make = ["TESLA"] }
[encryption]
recipients = ["age13k7zew9msc69sqmx4wt7jlxxdz9y25wdpsce3yqrwn5cm2880y6szzkp7r"]
TOML
done
echo "files: $n"
start=$(date +%s.%N)
"$bin" --config "$dir/regdrop.toml" check | tail -1
end=$(date +%s.%N)
echo "check: $(echo "$end - $start" | bc) s"
start=$(date +%s.%N)
REGDROP_LOG=warn "$bin" --config "$dir/regdrop.toml" run & pid=$!
while [ ! -f "$dir/state/daemon-status.json" ]; do sleep 0.05; done
end=$(date +%s.%N)
echo "daemon start to ready: $(echo "$end - $start" | bc) s"
kill -TERM "$pid"; wait "$pid"; echo "daemon exit: $?"
