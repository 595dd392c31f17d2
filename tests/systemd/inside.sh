#!/bin/bash
# Runs inside the nspawn container as ticketd-check.service; writes /results/log and, when every
# check passed, PASS to /results/status.
source /check/common.sh

echo "systemd $(systemctl --version | head -1 | cut -d' ' -f2), $(nproc) cpus"
systemctl start ticketd-emulator || fail "emulator did not start"
wait_until 50 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(systemctl show -p ExecStart --value ticketd-emulator | grep -o '127.0.0.1:[0-9]*' | cut -d: -f2)" \
  || fail "emulator not listening"

# 1. active only after READY (systemctl start of a Type=notify unit returns once READY=1 came).
t0=$(date +%s.%N)
systemctl start ticketd || fail "systemctl start ticketd"
[ "$(prop ActiveState)" = active ] || fail "not active: $(prop ActiveState)"
[ -s /run/ticketd/dash.token ] || fail "active, but no token written yet (READY came too early)"
journalctl -u ticketd --no-pager -o cat >/tmp/j
ready_line=$(grep -n "Started ticketd" /tmp/j | head -1 | cut -d: -f1)
token_line=$(grep -n "refreshed the token" /tmp/j | head -1 | cut -d: -f1)
[ -n "$ready_line" ] && [ -n "$token_line" ] && [ "$token_line" -lt "$ready_line" ] \
  || fail "journal order: token at line ${token_line:-none}, Started at ${ready_line:-none}"
ok "active after READY in $(awk -v a="$(date +%s.%N)" -v b="$t0" "BEGIN { printf \"%.1f\", a - b }") s; the token was written before 'Started' (journal lines $token_line < $ready_line)"

# 2. STATUS= in systemctl status.
status=$(prop StatusText)
[[ "$status" == *fresh* ]] || fail "StatusText: '$status'"
systemctl status ticketd --no-pager | grep -q "Status: \"$status\"" || fail "no Status: line in systemctl status"
ok "systemctl status shows Status: \"$status\""
# Metrics on the socket under the unit's sandbox (ProcSubset=pid hides /proc/stat: no start time).
metrics=$(curl -fsS --unix-socket /run/ticketd/ticketd.sock http://localhost/metrics) || fail "no /metrics on the socket"
for m in 'ticketd_token_expiry_timestamp_seconds{ticket="dash",kind="sls"}' process_resident_memory_bytes process_open_fds process_cpu_seconds_total; do
  grep -q "^$m " <<<"$metrics" || fail "/metrics lacks $m"
done
ok "/metrics on the socket has the ticket's gauges and process metrics"
# The unit's LimitNOFILE= is in effect, and the daemon shared it out (issue #16 item 2).
[ "$(prop LimitNOFILESoft)" = 16384 ] || fail "LimitNOFILESoft is $(prop LimitNOFILESoft), not the unit's 16384"
grep -Eq "^Max open files +16384 +16384" /proc/"$(prop MainPID)"/limits || fail "the daemon's fd limit: $(grep 'open files' /proc/"$(prop MainPID)"/limits)"
budget=$(grep "file descriptor limit and budget" /tmp/j | head -1)
[[ "$budget" == *soft=16384* && "$budget" == *socket_connections=4096* ]] || fail "fd budget line: '${budget:-none}'"
ok "LimitNOFILE=16384 in effect: $budget"

# 3. Directories and socket belong to the service user.
pid=$(prop MainPID)
uid=$(stat -c %u /proc/"$pid")
user=$(stat -c %U /proc/"$pid")
for p in /run/ticketd /run/ticketd/ticketd.sock /run/ticketd/dash.token /var/lib/private/ticketd /var/lib/private/ticketd/state.json; do
  owner=$(stat -c %u "$p" 2>/dev/null) || fail "$p missing"
  [ "$owner" = "$uid" ] || fail "$p owned by $owner, the service runs as $uid"
done
[ "$uid" != 0 ] || fail "runs as root"
ok "service runs as $user ($uid); /run/ticketd, the socket, the token, /var/lib/ticketd and state.json are its own"

# 4. Watchdog: a SIGSTOPped daemon is killed and restarted.
restarts=$(prop NRestarts)
kill -STOP "$pid"
t0=$(date +%s.%N)
wait_until 100 bash -c "[ \"\$(systemctl show -p MainPID --value ticketd)\" != $pid ] && [ \"\$(systemctl show -p ActiveState --value ticketd)\" = active ]" \
  || fail "not restarted after SIGSTOP (MainPID $(prop MainPID), $(prop ActiveState))"
journalctl -u ticketd --no-pager | grep -q "Watchdog timeout" || fail "no watchdog timeout in the journal"
ok "SIGSTOPped pid $pid: watchdog timeout, restarted as pid $(prop MainPID) in $(awk -v a="$(date +%s.%N)" -v b="$t0" "BEGIN { printf \"%.1f\", a - b }") s (NRestarts $restarts -> $(prop NRestarts))"

# 5. systemctl reload applies a config change (a new ticket), without a restart.
pid=$(prop MainPID)
cat /etc/ticketd/extra-ticket.toml >>/etc/ticketd/ticketd.toml
systemctl reload ticketd || fail "systemctl reload"
wait_until 50 test -s /run/ticketd/extra.token || fail "the reloaded ticket's token never came"
[ "$(prop MainPID)" = "$pid" ] || fail "reload restarted the daemon"
journalctl -u ticketd --no-pager | grep -q "reloaded the configuration" || fail "no reload line"
# And a broken file fails the reload, keeping the daemon as it was.
echo 'colour = "blue"' >>/etc/ticketd/ticketd.toml
if systemctl reload ticketd 2>/dev/null; then fail "a broken config reloaded"; fi
[ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" = "$pid" ] || fail "a failed reload disturbed the daemon"
ok "reload added a ticket (pid $pid kept); a broken file failed 'systemctl reload' and the daemon ran on"

# 6. systemctl stop exits cleanly.
systemctl stop ticketd
[ "$(prop Result)" = success ] || fail "stop result: $(prop Result)"
[ "$(prop ExecMainStatus)" = 0 ] || fail "exit status $(prop ExecMainStatus)"
journalctl -u ticketd --no-pager | grep -q "STOPPING\|stopped" || fail "no stop line"
ok "systemctl stop: Result=success, exit status 0"
echo PASS >/results/status
