#!/usr/bin/env bash
# Test systemd/ticketd.service under a real systemd, booted in systemd-nspawn (PID 1 of the build
# machine is not systemd). The host's / is bind-mounted to a scratch dir and booted with a volatile
# overlay, so nothing is written to the host; the unit, the binary, a test drop-in (short
# WatchdogSec), an emulator unit and the checks (inside.sh, run as a unit) are bound in.
# Results come back through a bound directory.
# A second boot tests the Debian package (tests/systemd/package.sh inside): built here with
# cargo-deb twice (the second with a bumped version), installed with dpkg -i, started against the
# emulator, upgraded in place, removed and purged.
#
# Needs: root, systemd-container (systemd-nspawn), cargo-deb, a built debug binary.
# Usage: tests/systemd/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
say() { echo "systemd test: $*"; }
command -v systemd-nspawn >/dev/null || { say "systemd-nspawn is missing (apt-get install systemd-container)"; exit 1; }
cargo deb --version >/dev/null 2>&1 || { say "cargo-deb is missing (cargo install --locked cargo-deb)"; exit 1; }
cargo build --quiet --locked
bin=$target_dir/debug/ticketd

work=$(mktemp -d)
root=$work/root
mkdir -p "$root" "$work/results" "$work/etc" "$work/units"
mount --bind / "$root"
cleanup() { umount "$root" 2>/dev/null || umount -l "$root" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port=$(shuf -i 20000-59999 -n 1)  # the container has its own network (--private-network)
id=LTAInspawntest
secret=nspawn-test-secret-0123456789
cat >"$work/etc/credentials.env" <<EOF
ALIBABA_CLOUD_ACCESS_KEY_ID=$id
ALIBABA_CLOUD_ACCESS_KEY_SECRET=$secret
EOF
chmod 0600 "$work/etc/credentials.env"
ticket() {
  cat <<EOF

[[tickets]]
name = "$1"
kind = "sls"
credentials = "prod"
endpoint = "http://127.0.0.1:$port"
ticket_lifetime = "1h"
token_lifetime = "1m"

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/$1.token"
format = "token"
EOF
}
{
  printf 'socket = "/run/ticketd/ticketd.sock"\n\n[credentials.prod]\nvendor = "alibaba"\n'
  ticket dash
} >"$work/etc/ticketd.toml"
ticket extra >"$work/etc/extra-ticket.toml"
chmod 0644 "$work/etc/ticketd.toml"

cat >"$work/units/ticketd-emulator.service" <<EOF
[Unit]
Description=cloud API emulator for the ticketd test
[Service]
Environment=ALIBABA_CLOUD_ACCESS_KEY_ID=$id ALIBABA_CLOUD_ACCESS_KEY_SECRET=$secret
ExecStart=/usr/bin/ticketd emulator --listen 127.0.0.1:$port
EOF
cat >"$work/units/test.conf" <<'EOF'
# Test drop-in: a short watchdog and restart delay.
[Service]
WatchdogSec=3s
RestartSec=1s
EOF
cat >"$work/units/ticketd-check.service" <<'EOF'
[Unit]
Description=ticketd checks
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash /check/inside.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console
EOF

# boot NAME BIND...: boot the host's / (volatile) with ticketd-check.service wanted, the given binds
# and /results bound to $work/NAME; fails unless the checks wrote PASS there.
boot() {
  local name=$1; shift
  mkdir -p "$work/$name"
  say "booting systemd in systemd-nspawn ($name)"
  local boot_start rc took
  boot_start=$(date +%s)
  set +e
  timeout "${NSPAWN_TIMEOUT:-120}" systemd-nspawn --register=no --keep-unit --link-journal=no --volatile=overlay \
    --private-network -D "$root" --console=pipe \
    --bind-ro="$work/units/ticketd-check.service:/etc/systemd/system/ticketd-check.service" \
    --bind-ro=/dev/null:/etc/systemd/system/prometheus.service \
    --bind-ro="$PWD/tests/systemd/common.sh:/check/common.sh" \
    --bind="$work/$name:/results" "$@" \
    -b systemd.wants=ticketd-check.service </dev/null >"$work/$name.console" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - boot_start ))
  cat "$work/$name/log" 2>/dev/null || { say "no results; console:"; tail -50 "$work/$name.console"; }
  if [ "$rc" != 0 ] && [ "$rc" != 133 ]; then say "systemd-nspawn exited $rc"; fi
  if [ "$(cat "$work/$name/status" 2>/dev/null)" != PASS ]; then
    say "FAILED ($name: nspawn $rc, ${took}s); console tail:"; tail -"${CONSOLE_LINES:-40}" "$work/$name.console"; exit 1
  fi
  say "passed ($name): boot, checks and power-off took ${took} s"
}

# 1. The unit and the binary, bound in.
boot unit \
  --bind-ro="$bin:/usr/bin/ticketd" \
  --bind-ro="$PWD/systemd/ticketd.service:/etc/systemd/system/ticketd.service" \
  --bind-ro="$work/units/test.conf:/etc/systemd/system/ticketd.service.d/test.conf" \
  --bind-ro="$work/units/ticketd-emulator.service:/etc/systemd/system/ticketd-emulator.service" \
  --bind-ro="$PWD/tests/systemd/inside.sh:/check/inside.sh" \
  --bind="$work/etc:/etc/ticketd"

# 2. The Debian package, from the same debug binary (what is tested is the packaging): version
# V-1, then V-2 for the upgrade. --fast: lighter compression (both take about 30 s here).
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
mkdir -p "$work/debs" "$work/pkg"
deb_start=$(date +%s)
for revision in 1 2; do
  cargo deb --no-build --profile dev --fast -q --deb-version "$version-$revision" -o "$work/debs/" >/dev/null \
    || { say "cargo deb failed"; exit 1; }
done
say "built $(cd "$work/debs" && echo *.deb) in $(( $(date +%s) - deb_start )) s"
{
  printf 'socket = "/run/ticketd/ticketd.sock"\n\n[credentials.prod]\nvendor = "alibaba"\n'
  # A day-long ticket and an hour-long token: nothing is due during the test, so a restart that
  # lost the state would show as a second CreateTicket.
  ticket dash | sed 's/ticket_lifetime = "1h"/ticket_lifetime = "1d"/; s/token_lifetime = "1m"/token_lifetime = "1h"/'
} >"$work/pkg/ticketd.toml"
grep -q 'token_lifetime = "1h"' "$work/pkg/ticketd.toml" || { say "the package test's config lost its lifetimes"; exit 1; }
cp "$work/etc/credentials.env" "$work/pkg/credentials.env"
cp config.example.toml "$work/pkg/config.example.toml"
echo "$port" >"$work/pkg/port"
echo "$version" >"$work/pkg/version"
sed 's|^ExecStart=/usr/bin/ticketd |ExecStart=/opt/ticketd-test/ticketd |' "$work/units/ticketd-emulator.service" \
  >"$work/units/ticketd-emulator-pkg.service"
boot package \
  --bind-ro="$bin:/opt/ticketd-test/ticketd" \
  --bind-ro="$work/units/ticketd-emulator-pkg.service:/etc/systemd/system/ticketd-emulator.service" \
  --bind-ro="$PWD/tests/systemd/package.sh:/check/inside.sh" \
  --bind-ro="$work/debs:/debs" \
  --bind-ro="$work/pkg:/pkg"
say "passed: total $(( $(date +%s) - start )) s"
