#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on this machine for the remote-run tests:
#   tests/remote/slurm_fixture.sh COMMAND [ARGS...]
# starts munged (own key and socket), slurmctld and slurmd (own config,
# ports, state and spool folders; SlurmUser = this user, no cgroups, no
# accounting database) and runs COMMAND with SLURM_CONF set, so sbatch,
# squeue, scontrol and scancel reach it. Exits 77 (skipped) when Slurm or
# munge is not installed (Debian: apt-get install slurm-wlm munge).
set -u
for tool in slurmctld slurmd munged sbatch squeue scontrol scancel; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "SKIP: $tool is not installed (apt-get install slurm-wlm munge)"; exit 77; }
done
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
PATH=$PATH:/usr/sbin
S=$(mktemp -d /tmp/bm-slurm.XXXXXX)
cleanup() {
  for f in slurmd slurmctld munged; do [ -f "$S/$f.pid" ] && kill "$(cat "$S/$f.pid")" 2>/dev/null; done
  sleep 0.5
  if [ -n "${KEEP_FIXTURE:-}" ]; then echo "fixture kept in $S"; else rm -rf "$S"; fi
}
trap cleanup EXIT
mkdir -p "$S/state" "$S/spool"
dd if=/dev/urandom of="$S/munge.key" bs=1024 count=1 status=none
chmod 400 "$S/munge.key"
munged --force --socket="$S/munge.sock" --key-file="$S/munge.key" --pid-file="$S/munged.pid" \
  --log-file="$S/munged.log" --seed-file="$S/munge.seed" || { echo "FAIL: munged did not start"; exit 1; }
node=$(hostname -s)
me=$(id -un)
port=$(( 30000 + (RANDOM % 20000) ))
cpus=$(nproc)
cat > "$S/slurm.conf" <<CONF
ClusterName=bmtest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=$me
SlurmdUser=$me
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$S/munge.sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=600
KillWait=10
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$S/slurm.conf"
slurmctld -c -i || { echo "FAIL: slurmctld did not start"; tail "$S/slurmctld.log"; exit 1; }
slurmd || { echo "FAIL: slurmd did not start"; tail "$S/slurmd.log"; exit 1; }
for i in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -qx idle && break
  sleep 0.5
done
sinfo -h -o %T 2>/dev/null | grep -qx idle || { echo "FAIL: the node did not come up"; sinfo; tail "$S/slurmctld.log" "$S/slurmd.log"; exit 1; }
export BIMAMBA_TEST_SLURM_DIR="$S"
"$@"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then echo "--- slurmctld.log"; tail -n 20 "$S/slurmctld.log"; echo "--- slurmd.log"; tail -n 20 "$S/slurmd.log"; fi
exit $rc
