#!/bin/sh
# Lay out the runtime image's whole filesystem in OUT: the static ticketd binary, a CA bundle, and
# passwd/group entries for the non-root user (uid/gid 65532, "ticketd"). Used by the Containerfile's
# build stage and by tests/container/run.sh, so both produce the same tree.
# Usage: container/rootfs.sh OUT BINARY [CA_BUNDLE]
set -eu
out=$1
bin=$2
ca=${3:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$out/usr/bin" "$out/etc/ssl/certs" "$out/etc/ticketd" "$out/var/lib/ticketd" "$out/run/ticketd" "$out/tmp"
cp "$bin" "$out/usr/bin/ticketd"
chmod 0755 "$out/usr/bin/ticketd"
cp "$ca" "$out/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$out/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nticketd:x:65532:65532:ticketd:/var/lib/ticketd:/sbin/nologin\n' >"$out/etc/passwd"
printf 'root:x:0:\nticketd:x:65532:\n' >"$out/etc/group"
# State and runtime directories belong to the service user; /tmp is sticky and world-writable.
chown 65532:65532 "$out/var/lib/ticketd" "$out/run/ticketd" 2>/dev/null || true
chmod 0700 "$out/var/lib/ticketd"
chmod 0755 "$out/run/ticketd"
chmod 1777 "$out/tmp"
