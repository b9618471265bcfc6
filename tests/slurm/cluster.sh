#!/usr/bin/env bash
# A real single-node SLURM for tests (root, no systemd): munged, slurmctld, slurmd, no
# accounting database, and a fake `gpu` gres (File=/dev/null) so that jobs asking for a GPU
# are scheduled on a CPU-only node. Pitfalls found on the way are noted where they matter below.
#   cluster.sh start STATE_DIR    write /etc/slurm/{slurm,gres}.conf, start, wait until idle
#   cluster.sh stop STATE_DIR     stop every daemon it started, by its pid file, and remove the
#                                 config files it wrote (a slurm.conf naming a stopped controller
#                                 makes every `scontrol`, and so every Snakemake start, wait 9 s)
set -euo pipefail
action=$1
dir=$2
conf=/etc/slurm/slurm.conf
marker="# written by reachability tests/slurm/cluster.sh"

stop_pid_file() {  # TERM, wait, then KILL; a zombie (<defunct>) counts as stopped
  local file=$1 pid state
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    [ -z "$state" ] || [[ $state == Z* ]] && return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

case $action in
start)
  if [ -f $conf ] && ! grep -qF "$marker" $conf; then
    echo "refusing to overwrite $conf: it was not written by these tests" >&2
    exit 2
  fi
  host=$(hostname -s)
  cpus=$(slurmd -C | grep -o 'CPUs=[0-9]*' | cut -d= -f2)  # not nproc: it follows OMP_NUM_THREADS
  memory=$(( $(slurmd -C | grep -o 'RealMemory=[0-9]*' | cut -d= -f2) - 1024 ))
  rm -rf "$dir"
  mkdir -p "$dir"/{state,spool,log,run}
  cat > $conf <<CONF
$marker
ClusterName=reachability-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$memory Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  printf '%s\nAutoDetect=off\nNodeName=%s Name=gpu File=/dev/null\n' "$marker" "$host" > /etc/slurm/gres.conf
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  cp /run/munge/munged.pid "$dir/run/munged.pid"
  slurmctld -i
  slurmd
  for _ in $(seq 120); do
    [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ] && exit 0
    sleep 0.5
  done
  echo "SLURM node did not become idle:" >&2
  sinfo -N -l >&2 || true
  tail -20 "$dir"/log/*.log >&2 || true
  exit 1
  ;;
stop)
  stop_pid_file "$dir/run/slurmd.pid"
  stop_pid_file "$dir/run/slurmctld.pid"
  stop_pid_file "$dir/run/munged.pid"
  for file in $conf /etc/slurm/gres.conf; do
    if [ -f "$file" ] && grep -qF "$marker" "$file"; then rm -f "$file"; fi
  done
  ;;
*)
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
  ;;
esac
