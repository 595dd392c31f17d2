#!/bin/bash
# Runs inside the nspawn container (tests/systemd/run.sh, second boot) as ticketd-check.service:
# the Debian package installed with dpkg -i, started against the emulator, upgraded in place to a
# bumped version, removed (config and state stay) and purged (both go). Writes /results/log and,
# when every check passed, PASS to /results/status.
source /check/common.sh
port=$(cat /pkg/port)
version=$(cat /pkg/version)
# One count from the emulator's GET /_emulator/stats.
count() { curl -fsS "http://127.0.0.1:$port/_emulator/stats" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
installed() { dpkg-query -W -f='${Status} ${Version}' ticketd 2>/dev/null; }
state=/var/lib/private/ticketd/state.json

# The host's / may be a container image whose policy-rc.d (exit 101) forbids maintainer scripts to
# start or restart services (deb-systemd-invoke asks it); a real system has none. The overlay is
# volatile: the host keeps its own.
rm -f /usr/sbin/policy-rc.d
systemctl start ticketd-emulator || fail "emulator did not start"
wait_until 50 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || fail "emulator not listening"

# 1. dpkg -i: the files, the links, the conffile; nothing started, no user or directory created.
dpkg -i "/debs/ticketd_${version}-1_amd64.deb" >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i"; }
[ "$(installed)" = "install ok installed $version-1" ] || fail "dpkg-query: $(installed)"
provider=/usr/libexec/ticketd/ticketd-credential-provider
[ "$(readlink /usr/bin/docker-credential-ticketd)" = ticketd ] || fail "/usr/bin/docker-credential-ticketd: $(ls -l /usr/bin/docker-credential-ticketd 2>&1)"
[ "$(readlink -f $provider)" = /usr/bin/ticketd ] || fail "$provider: $(ls -l $provider 2>&1)"
# (/lib is /usr/lib on a merged-/usr system.)
[ "$(readlink -f "$(systemctl show -p FragmentPath --value ticketd)")" = /usr/lib/systemd/system/ticketd.service ] \
  || fail "unit at $(systemctl show -p FragmentPath --value ticketd)"
cmp -s /etc/ticketd/ticketd.toml /pkg/config.example.toml || fail "/etc/ticketd/ticketd.toml is not config.example.toml"
dpkg-query -W -f='${Conffiles}' ticketd | grep -q "^ /etc/ticketd/ticketd.toml " || fail "not a conffile"
[ "$(systemctl is-enabled ticketd)" = disabled ] && [ "$(prop ActiveState)" = inactive ] \
  || fail "installing started or enabled it: $(systemctl is-enabled ticketd), $(prop ActiveState)"
! getent passwd ticketd >/dev/null || fail "a ticketd user was created"
[ ! -e /var/lib/ticketd ] && [ ! -e /var/lib/private/ticketd ] && [ ! -e /run/ticketd ] || fail "directories created at install"
ok "dpkg -i $version-1: /usr/bin/ticketd, both links, the unit, the conffile; not started, no user or directory made"

# 2. Configured and started: DynamicUser= makes the user and the directories.
cp /pkg/ticketd.toml /etc/ticketd/ticketd.toml
install -m 0600 /pkg/credentials.env /etc/ticketd/credentials.env
systemctl enable --now ticketd >/dev/null 2>&1 || fail "systemctl enable --now ticketd"
[ "$(prop ActiveState)" = active ] && [ -s /run/ticketd/dash.token ] && [ -s "$state" ] || fail "not running with a token and state"
pid=$(prop MainPID)
[ "$(stat -c %u /proc/"$pid")" != 0 ] && [ "$(stat -c %u "$state")" = "$(stat -c %u /proc/"$pid")" ] || fail "state not the dynamic user's"
[ "$(docker-credential-ticketd list)" = "{}" ] || fail "docker-credential-ticketd list: $(docker-credential-ticketd list 2>&1)"
request='{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"other.example.com/app:1"}'
answer=$($provider <<<"$request") || fail "ticketd-credential-provider: $answer"
grep -q '"kind":"CredentialProviderResponse"' <<<"$answer" || fail "ticketd-credential-provider answered: $answer"
minted=$(count create_ticket); refreshed=$(count refresh_token); token=$(cat /run/ticketd/dash.token)
[ "$minted" = 1 ] || fail "CreateTicket calls: $minted"
ok "started as $(stat -c %U /proc/"$pid") (pid $pid): token and state written; both links answer (argv[0]); CreateTicket $minted, RefreshToken $refreshed"

# 3. Upgrade in place: the running daemon is restarted on the new version, from its saved state.
dpkg -i "/debs/ticketd_${version}-2_amd64.deb" >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -i (upgrade)"; }
[ "$(installed)" = "install ok installed $version-2" ] || fail "after the upgrade: $(installed)"
[ "$(prop ActiveState)" = active ] && [ "$(prop MainPID)" != "$pid" ] || fail "not restarted: $(prop ActiveState), pid $(prop MainPID)"
grep -q "127.0.0.1:$port" /etc/ticketd/ticketd.toml || fail "the upgrade replaced the edited conffile"
[ "$(count create_ticket)" = "$minted" ] && [ "$(count refresh_token)" = "$refreshed" ] \
  || fail "the upgrade re-minted: CreateTicket $minted -> $(count create_ticket), RefreshToken $refreshed -> $(count refresh_token)"
[ "$(cat /run/ticketd/dash.token)" = "$token" ] || fail "the token changed"
ok "dpkg -i $version-2: restarted (pid $pid -> $(prop MainPID)) with the same token; CreateTicket still $minted, RefreshToken still $refreshed; the edited config kept"

# 4. dpkg -r: stopped and gone, config and state kept.
dpkg -r ticketd >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg -r"; }
[ "$(installed)" = "deinstall ok config-files $version-2" ] || fail "after dpkg -r: $(installed)"
[ "$(prop ActiveState)" != active ] || fail "still running after dpkg -r"
[ ! -e /usr/bin/ticketd ] && [ ! -L /usr/bin/docker-credential-ticketd ] && [ ! -L $provider ] || fail "files left"
[ -f /etc/ticketd/ticketd.toml ] && [ -f /etc/ticketd/credentials.env ] && [ -s "$state" ] || fail "dpkg -r lost config or state"
ok "dpkg -r: stopped, binary and links gone; /etc/ticketd and $state kept"

# 5. dpkg --purge: config and state gone.
dpkg --purge ticketd >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "dpkg --purge"; }
[ -z "$(installed | grep -v '^unknown ok not-installed')" ] || fail "after purge: $(installed)"
for p in /etc/ticketd /var/lib/private/ticketd /var/lib/ticketd; do [ ! -e "$p" ] || fail "$p left after purge"; done
ok "dpkg --purge: /etc/ticketd, /var/lib/ticketd and /var/lib/private/ticketd removed"
echo PASS >/results/status
