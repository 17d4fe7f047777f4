# Shared helpers of the scripts/bench_*.sh benchmarks. Source it, do not run it:
#   . "$(dirname "$0")/bench_lib.sh"
# The caller sets `work` (a scratch folder it removes) and keeps `pids` (an array of
# processes to stop on exit) before calling start_sshd.

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until something listens on 127.0.0.1:$1 (10 s at most).
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not up" >&2; exit 1; }

# Starts a throwaway OpenSSH sshd on a free loopback port, as the current user, with a fresh
# ed25519 host key ($work/host) and user key ($work/user, in $work/authorized_keys). Sets
# `port` and `user` and writes $work/known_hosts for OpenSSH clients.
start_sshd() {
  # sshd started by root needs its privilege separation folder; as another user it does not.
  if [ "$(id -u)" -eq 0 ]; then mkdir -p /run/sshd; fi
  ssh-keygen -q -t ed25519 -N '' -f "$work/host" -C bench-host
  ssh-keygen -q -t ed25519 -N '' -f "$work/user" -C bench-user
  cp "$work/user.pub" "$work/authorized_keys"
  port=$(free_port)
  cat > "$work/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $work/host
AuthorizedKeysFile $work/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin yes
UsePAM no
StrictModes no
PidFile $work/sshd.pid
Subsystem sftp internal-sftp
CFG
  /usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
  pids+=($!)
  wait_port "$port"
  user=$(id -un)
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$work/host.pub")" > "$work/known_hosts"
}

# From a `/usr/bin/time -v` report: peak RSS in MiB, CPU seconds (user + system), wall
# seconds.
rss() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"; }
cpu() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }
wall() { awk '/Elapsed \(wall/ {print $NF}' "$1" | awk -F: '{ if (NF==3) printf "%.2f", $1*3600+$2*60+$3; else printf "%.2f", $1*60+$2 }'; }

# Median of each column and of the per-pair ratio a/b, from lines "a b" on stdin.
# usage: median_pairs LABEL_A LABEL_B UNIT
median_pairs() {
  python3 -c '
import statistics, sys
a_name, b_name, unit = sys.argv[1:4]
pairs = [tuple(map(float, l.split()[:2])) for l in sys.stdin if l.strip()]
a = statistics.median(p[0] for p in pairs); b = statistics.median(p[1] for p in pairs)
r = [p[0] / p[1] for p in pairs]
each = ", ".join("%.2f" % x for x in r)
print(f"median of {len(pairs)}: {a_name} {a:.2f} {unit}, {b_name} {b:.2f} {unit}, "
      f"median pair ratio {statistics.median(r):.2f}x (pairs: {each})")
' "$@"
}
