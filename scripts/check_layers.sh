#!/usr/bin/env bash
# Keeps the arrows of the layout pointing one way (docs/design.md "Layers"): each layer may
# name only the crate modules listed for it. Comments and doc links are not imports and
# are ignored. Exit 1, with each offending line, on the first layer that breaks the rule.
set -euo pipefail
cd "$(dirname "$0")/.."

core="core"
support="core"                                  # progress, telemetry, secret: leaf helpers
adapters="core progress telemetry secret pgconn" # each adapter stands alone on the core
pipeline="core progress telemetry secret pgconn loader register extract seal sftp store mail http_post"
daemon="$pipeline pipeline"
cmd="$daemon daemon demo_server cmd"

declare -A allowed=(
  [core]="$core"
  [progress]="$support" [telemetry]="$support" [secret]="$support" [pgconn]="$support"
  [loader]="$adapters" [register]="$adapters" [extract]="$adapters" [seal]="$adapters"
  [sftp]="$adapters" [store]="$adapters" [demo_server]="$adapters"
  [mail]="$adapters" [http_post]="$adapters"
  [pipeline]="$pipeline"
  [daemon]="$daemon"
  [cmd]="$cmd"
)

status=0
known=" ${!allowed[*]} "
for m in src/*; do
  name=$(basename "$m" .rs)
  case "$name" in lib | main) continue ;; esac
  if [[ "$known" != *" $name "* ]]; then
    echo "check_layers: src/$name is in no layer; add it to scripts/check_layers.sh and docs/design.md" >&2
    status=1
    continue
  fi
  ok=" ${allowed[$name]} $name "
  # every `crate::x` outside a comment
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    text=${rest#*:}
    for used in $(grep -oE 'crate::[a-z_]+' <<<"$text" | sed 's/crate:://' | sort -u); do
      if [[ "$ok" != *" $used "* ]]; then
        echo "check_layers: $file:$line: layer '$name' must not use crate::$used: $text" >&2
        status=1
      fi
    done
  done < <(grep -rnE 'crate::[a-z_]+' "$m" | grep -vE '^[^:]+:[0-9]+:\s*//')
done
# The binary uses the library only through the commands.
if grep -nE 'regdrop::' src/main.rs | grep -vE 'regdrop::cmd' >&2; then
  echo "check_layers: src/main.rs must use only regdrop::cmd" >&2
  status=1
fi
[ $status -eq 0 ] && echo "check_layers: ok (core <- adapters <- pipeline <- daemon <- cmd <- main)"
# Inside the layers too: no two files name each other.
python3 scripts/check_cycles.py || status=1
exit $status
