# Sourced by the checks that run inside the nspawn container (inside.sh, package.sh): output goes
# to /results/log; fail writes FAIL to /results/status with the journal's tail.
set -uo pipefail
exec > >(tee /results/log) 2>&1
fail() { echo "FAIL: $*"; echo "--- journal"; journalctl -u ticketd -u ticketd-emulator --no-pager | tail -60; echo FAIL >/results/status; exit 1; }
ok() { echo "ok: $*"; }
prop() { systemctl show -p "$1" --value ticketd; }
wait_until() { local n=$1; shift; for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.2; done; return 1; }
