#!/usr/bin/env bash
# Extract benchmark, regdrop against what an admin would script: `sqlite3 -separator '¤'`
# piped into the `age` CLI, same rows, same run. Prints times, ratios and peak RSS.
#
#   scripts/bench_extract.sh [VEHICLES] [WORKDIR]     (default 4000000, a temp folder)
#
# Needs: a release build (cargo build --release), sqlite3, age, age-keygen, /usr/bin/time.
set -euo pipefail
N=${1:-4000000}
W=${2:-$(mktemp -d)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/target/release/regdrop"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release -q)
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
mkdir -p "$W/subs"
rm -f "$W/id.txt" "$W/hk" "$W/hk.pub"
age-keygen -o "$W/id.txt" 2>/dev/null
REC=$(age-keygen -y "$W/id.txt")
HOSTKEY=$(ssh-keygen -q -t ed25519 -N '' -f "$W/hk" <<<y >/dev/null 2>&1; cut -d' ' -f1,2 "$W/hk.pub")

cat > "$W/regdrop.toml" <<TOML
register = "register.sqlite"
spool_dir = "spool"
state_db = "state.sqlite"
subscriptions_dir = "subs"
TOML
sub() { # id report format [extra]
cat > "$W/subs/$1.toml" <<TOML
id = "$1"
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
report = "$2"
format = "$3"
${4:-}
[encryption]
recipients = ["$REC"]
TOML
}
sub owners-dsv technical_owners dsv
peak() { grep "Maximum resident" "$1" | awk '{printf "%.1f MiB", $6/1024}'; }
secs() { grep "Elapsed (wall" "$1" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }

if [ ! -f "$W/register.sqlite" ]; then
  echo "== register generate --vehicles $N"
  /usr/bin/time -v "$BIN" --config "$W/regdrop.toml" register generate --vehicles "$N" --seed 1 2> "$W/gen.time" | tail -3
  g=$(secs "$W/gen.time"); echo "generate: ${g}s, $(python3 -c "print(f'{$N/$g:,.0f}')") vehicles/s, peak RSS $(peak "$W/gen.time")"
fi

echo "== technical_owners, dsv + age: regdrop vs sqlite3 | age"
SQL=$("$BIN" --config "$W/regdrop.toml" preview owners-dsv --sql)
sync
/usr/bin/time -v "$BIN" --config "$W/regdrop.toml" extract owners-dsv --out "$W/regdrop.age" > "$W/regdrop.out" 2> "$W/regdrop.time"
/usr/bin/time -v sh -c "sqlite3 -header -separator '¤' '$W/register.sqlite' \"\$1\" | age -r '$REC' > '$W/sqlite3.age'" sh "$SQL" 2> "$W/sqlite3.time"
r=$(secs "$W/regdrop.time"); s=$(secs "$W/sqlite3.time")
rows=$(grep '^rows:' "$W/regdrop.out" | awk '{print $2}')
echo "rows: $rows, plaintext $(grep '^plaintext bytes' "$W/regdrop.out" | awk '{print $3}') bytes"
echo "regdrop extract:  ${r}s, peak RSS $(peak "$W/regdrop.time")"
echo "sqlite3 | age:    ${s}s, peak RSS $(peak "$W/sqlite3.time") (sqlite3 + age; sh measures the largest child)"
echo "ratio regdrop/sqlite3+age: $(python3 -c "print(f'{$r/$s:.2f}x')") (<= 1.0 means regdrop is not slower)"
a=$(age -d -i "$W/id.txt" "$W/regdrop.age" | sha256sum | cut -c1-64)
b=$(age -d -i "$W/id.txt" "$W/sqlite3.age" | sha256sum | cut -c1-64)
[ "$a" = "$b" ] && echo "same plaintext: yes ($a)" || echo "same plaintext: NO ($a vs $b)"
rm -f "$W/regdrop.age" "$W/sqlite3.age"

echo "== xlsx, 1,000,000 rows x 15 columns (a 1,000,000-vehicle register)"
sed 's/register.sqlite/register1m.sqlite/' "$W/regdrop.toml" > "$W/regdrop1m.toml"
[ -f "$W/register1m.sqlite" ] || "$BIN" --config "$W/regdrop1m.toml" register generate --vehicles 1000000 --seed 2 > /dev/null
sub tech-xlsx custom xlsx 'columns = ["TEKN_KJM","TEKN_UNR","TEKN_REG_F_G","TEKN_REG_F_G_N","TEKN_REG_STATUS","TEKN_MERKE","TEKN_MERKENAVN","TEKN_MODELL","TEKN_KJTGRP","TEKN_DRIVST","TEKN_FARGE","TEKN_EGENVEKT","TEKN_TOTVEKT","TEKN_SITTEPLASSER_TOTALT","TEKN_CO2_UTSLIPP"]'
/usr/bin/time -v "$BIN" --config "$W/regdrop1m.toml" extract tech-xlsx --out "$W/x.age" > "$W/x.out" 2> "$W/x.time"
echo "xlsx: $(grep '^rows:' "$W/x.out" | awk '{print $2}') rows, format $(grep '^format:' "$W/x.out" | cut -d: -f2), $(secs "$W/x.time")s, peak RSS $(peak "$W/x.time")"
rm -f "$W/x.age"
echo "(work folder: $W)"
