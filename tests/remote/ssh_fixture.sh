#!/usr/bin/env bash
# A throwaway OpenSSH server on 127.0.0.1 for the remote-run tests:
#   tests/remote/ssh_fixture.sh COMMAND [ARGS...]
# starts /usr/sbin/sshd on a free port with a generated host key, lets this
# user in with a generated key only (no passwords), writes a known_hosts for
# it and a workspace whose hosts.toml names it, runs COMMAND with
#   BIMAMBA_TEST_SSH_WS      the workspace (hosts.toml: host "loop", and "stranger":
#                            the same server with an empty known_hosts)
#   BIMAMBA_TEST_SSH_DIR     the fixture's folder (keys, logs, the "remote" side)
#   BIMAMBA_TEST_SSHD_START  a command line that starts the server again
#   BIMAMBA_TEST_SSHD_PIDFILE
#   BIMAMBA_SSH_CONTROL_DIR  ssh's control sockets, inside the fixture
# and stops everything afterwards. Exits 77 (skipped) when sshd is missing
# (Debian: apt-get install openssh-server openssh-client rsync).
set -u
for tool in /usr/sbin/sshd ssh ssh-keygen rsync; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (apt-get install openssh-server openssh-client rsync)"
    exit 77
  fi
done
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

T=$(mktemp -d /tmp/bm-ssh.XXXXXX)
SSHD_PID=
cleanup() {
  [ -n "${BIMAMBA_SSH_CONTROL_DIR:-}" ] && for s in "$BIMAMBA_SSH_CONTROL_DIR"/*; do
    [ -S "$s" ] && ssh -o ControlPath="$s" -O exit dummy >/dev/null 2>&1
  done
  [ -f "$T/sshd.pid" ] && kill "$(cat "$T/sshd.pid")" 2>/dev/null
  # what the tests left running on the "remote" side
  find "$T" -name launcher.pid -exec cat {} + 2>/dev/null | while read -r p; do kill "$p" 2>/dev/null; done
  if [ -n "${KEEP_FIXTURE:-}" ]; then echo "fixture kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

mkdir -p "$T/ctl" "$T/ws" /run/sshd 2>/dev/null
chmod 700 "$T/ctl"
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey" -C fixture-host
ssh-keygen -q -t ed25519 -N '' -f "$T/id" -C fixture-user
cp "$T/id.pub" "$T/authorized_keys"
me=$(id -un)

start_sshd() {
  /usr/sbin/sshd -f "$T/sshd_config" -E "$T/sshd.log"
}
for attempt in 1 2 3 4 5; do
  PORT=$(( 20000 + (RANDOM % 20000) ))
  cat > "$T/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $T/hostkey
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
StrictModes no
AllowUsers $me
LogLevel VERBOSE
CFG
  # Under tests/remote/slurm_fixture.sh: sessions reach its cluster.
  [ -n "${SLURM_CONF:-}" ] && echo "SetEnv SLURM_CONF=$SLURM_CONF" >> "$T/sshd_config"
  start_sshd || continue
  for i in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  [ -f "$T/sshd.pid" ] && kill "$(cat "$T/sshd.pid")" 2>/dev/null
  PORT=
done
[ -n "${PORT:-}" ] || { echo "FAIL: sshd did not start"; cat "$T/sshd.log"; exit 1; }
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$T/hostkey.pub")" > "$T/known_hosts"
: > "$T/empty_known_hosts"

# The remote work folder has a space and a quote: every path is quoted on its way.
REMOTE="$T/remote dir/it's"
cat > "$T/ws/hosts.toml" <<TOML
[hosts.loop]
kind = "ssh"
host = "127.0.0.1"
port = $PORT
user = "$me"
identity_file = "$T/id"
known_hosts = "$T/known_hosts"
bimamba = "${BIMAMBA_CLI:-bimamba}"
workdir = "$(printf '%s' "$REMOTE" | sed 's/\\/\\\\/g; s/"/\\"/g')"

[hosts.stranger]
kind = "ssh"
host = "127.0.0.1"
port = $PORT
user = "$me"
identity_file = "$T/id"
known_hosts = "$T/empty_known_hosts"
TOML
if [ -n "${SLURM_CONF:-}" ]; then
  cat >> "$T/ws/hosts.toml" <<TOML

# The fixture's one-node Slurm cluster, reached over ssh ...
[hosts.cluster]
kind = "slurm"
host = "127.0.0.1"
port = $PORT
user = "$me"
identity_file = "$T/id"
known_hosts = "$T/known_hosts"
bimamba = "${BIMAMBA_CLI:-bimamba}"
workdir = "$T/cluster work"
time = "30:00"

# ... and from this machine, with a job that waits (PENDING, reason BeginTime)
[hosts.later]
kind = "slurm"
workdir = "$T/later"
sbatch = ["--begin=now+3600"]

# ... and a job that fails: its "bimamba" exits 1
[hosts.broken]
kind = "slurm"
bimamba = "/bin/false"
workdir = "$T/broken"
TOML
fi

export BIMAMBA_TEST_SSH_WS="$T/ws" BIMAMBA_TEST_SSH_DIR="$T" BIMAMBA_SSH_CONTROL_DIR="$T/ctl"
export BIMAMBA_TEST_SSHD_START="/usr/sbin/sshd -f $T/sshd_config -E $T/sshd.log" BIMAMBA_TEST_SSHD_PIDFILE="$T/sshd.pid"
"$@"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then echo "--- sshd.log (last lines)"; tail -n 20 "$T/sshd.log"; fi
exit $rc
