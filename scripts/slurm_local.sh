#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try `hydra/launcher=slurm` without a real cluster.
#
#   sudo scripts/slurm_local.sh start     # prints the `export SLURM_CONF=...` to paste
#   scripts/slurm_local.sh status
#   sudo scripts/slurm_local.sh stop
#
# Needs Debian/Ubuntu's slurm-wlm and munge (`apt-get install -y slurm-wlm munge`) and root
# (slurmd starts jobs as their users). Everything the cluster writes (its slurm.conf, munge key
# and socket, state, logs) lives in one folder, $SLURM_LOCAL_DIR (default /tmp/slurm-local-$USER);
# the machine's own /etc/slurm and munge are not touched; slurmctld and slurmd listen on
# $SLURM_LOCAL_PORT and the next port (default 6917, 6918). One partition, `local`, with this
# machine's CPUs and memory, jobs bound to the CPUs they asked for; no accounting (sacct has
# nothing to show, squeue works). `stop` ends the jobs, the daemons and every process the cluster
# started, and removes the folder.
set -euo pipefail

dir="${SLURM_LOCAL_DIR:-${TMPDIR:-/tmp}/slurm-local-$(id -un)}"
ctld_port="${SLURM_LOCAL_PORT:-6917}"
conf="$dir/slurm.conf"
node="$(hostname -s)"

fail() { echo "error: $*" >&2; exit 2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

write_config() {
  local cpus mem_mb
  cpus="$(nproc)"
  mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
  cat >"$conf" <<EOF
# Written by scripts/slurm_local.sh: a one-node cluster for trying the SLURM launcher.
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=2
Waittime=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  mkdir -p "$dir/munge"
  chmod 755 "$dir/munge"  # users submit through its socket; the key file stays root-only
  if [ ! -f "$dir/munge/munge.key" ]; then
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
  fi
  pid_alive "$dir/munge/munged.pid" && return
  munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
}

wait_for_node() {
  local i
  for i in $(seq 1 50); do
    if SLURM_CONF="$conf" sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

start() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null ||
    fail "slurmctld or munged not found; install them with: apt-get install -y slurm-wlm munge"
  [ "$(id -u)" -eq 0 ] || fail "starting slurmd needs root (it runs jobs as their users); run with sudo"
  mkdir -p "$dir/state" "$dir/spool"
  write_config
  start_munge
  pid_alive "$dir/slurmctld.pid" || SLURM_CONF="$conf" slurmctld -f "$conf"
  pid_alive "$dir/slurmd.pid" || SLURM_CONF="$conf" slurmd -f "$conf" -N "$node"
  wait_for_node || fail "the node did not come up; see $dir/slurmctld.log and $dir/slurmd.log"
  echo "SLURM is up: partition local, $(nproc) CPUs, state in $dir. In your shell:"
  echo "export SLURM_CONF=$conf"
}

running() {  # alive: not gone and not a zombie (exited, waiting for its parent to collect it)
  local state
  state="$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

stop_daemon() {
  local pid_file="$1" pid i
  pid_alive "$pid_file" || return 0
  pid="$(cat "$pid_file")"  # the daemon removes its pid file while it shuts down: wait on the pid
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    running "$pid" || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

queued_jobs() {
  SLURM_CONF="$conf" squeue -h -o %i 2>/dev/null || true
}

cancel_jobs() {
  local jobs i
  pid_alive "$dir/slurmctld.pid" || return 0
  jobs="$(queued_jobs)"
  [ -n "$jobs" ] || return 0
  SLURM_CONF="$conf" scancel --full --quiet $jobs 2>/dev/null || true  # suspended ones too
  for i in $(seq 1 50); do  # until the jobs have ended, 10 s at most
    [ -z "$(queued_jobs)" ] && return 0
    sleep 0.2
  done
}

# The processes the cluster started that are still alive: its step daemons (slurmstepd) and its
# jobs' processes, known by this cluster's slurm.conf in their environment (SLURM_CONF) and, for a
# job's, SLURM_JOB_ID. Stopping slurmd does not end them, and SLURM itself leaves some behind: a
# suspended job that is requeued keeps its batch step's slurmstepd, script and srun running.
cluster_processes() {
  local file pid
  grep -lzxF "SLURM_CONF=$conf" /proc/[0-9]*/environ 2>/dev/null | while read -r file; do
    pid="${file#/proc/}"
    pid="${pid%/environ}"
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmstepd ] || grep -qz '^SLURM_JOB_ID=' "$file" 2>/dev/null; then
      echo "$pid"
    fi
  done || true  # none found (grep's status 1) is no error
}

end_cluster_processes() {
  local pids i
  pids="$(cluster_processes)"
  [ -n "$pids" ] || return 0
  kill -TERM $pids 2>/dev/null || true
  kill -CONT $pids 2>/dev/null || true  # a suspended job's processes act on TERM only once continued
  for i in $(seq 1 20); do
    pids="$(cluster_processes)"
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  for i in $(seq 1 20); do  # a job ignores TERM (submitit's requeue) or a step daemon started one meanwhile
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
    pids="$(cluster_processes)"
    [ -n "$pids" ] || return 0
  done
}

stop() {
  [ -d "$dir" ] || { echo "no local cluster in $dir"; return 0; }
  cancel_jobs
  stop_daemon "$dir/slurmd.pid"
  stop_daemon "$dir/slurmctld.pid"
  end_cluster_processes
  stop_daemon "$dir/munge/munged.pid"
  rm -rf "$dir"
  echo "stopped; removed $dir"
}

status() {
  if pid_alive "$dir/slurmctld.pid" && pid_alive "$dir/slurmd.pid"; then
    SLURM_CONF="$conf" sinfo
    echo "export SLURM_CONF=$conf"
  else
    echo "not running (state folder: $dir)"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
