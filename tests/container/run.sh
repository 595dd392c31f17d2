#!/usr/bin/env bash
# Build the container image for real and run it as a sidecar would: host network (to reach the
# emulator on loopback), config mounted read-only, tokens written to a mounted directory as uid
# 65532, then `run --once` as an init container would.
#
# No image registry is reachable on the build machines, so the Containerfile's build stage (rust on
# Alpine) cannot be pulled here. This script builds the same static musl binary on the host, lays
# out the same tree with container/rootfs.sh, and builds the Containerfile's runtime stage (from
# its `FROM scratch` line on) with `COPY --from=build /out/ /` pointed at that tree.
#
# Needs: podman, buildah, runc, rustup target x86_64-unknown-linux-musl, musl-tools, protoc and the
# well-known protos (protobuf-compiler libprotobuf-dev: the etcd feature). Run as root.
# Usage: tests/container/run.sh   (CARGO_TARGET_DIR is honoured; KEEP_IMAGE=1 keeps the image)
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
image=localhost/ticketd-test:latest
podman=(podman --runtime runc)
say() { echo "container test: $*"; }

for tool in podman buildah runc curl; do
  command -v "$tool" >/dev/null || { say "$tool is missing"; exit 1; }
done

say "building the static binary (x86_64-unknown-linux-musl, --features etcd as the Containerfile does)"
cargo build --quiet --release --locked --features etcd --target x86_64-unknown-linux-musl
bin=$target_dir/x86_64-unknown-linux-musl/release/ticketd
file_says=$(file -b "$bin" 2>/dev/null || true)
case "$file_says" in
  *"static"*) say "binary: $file_says" ;;
  "") ldd "$bin" 2>&1 | grep -q "not a dynamic executable\|statically linked" || { say "not static"; exit 1; } ;;
  *) say "not a static binary: $file_says"; exit 1 ;;
esac
cargo build --quiet --locked  # the host binary runs the emulator

work=$(mktemp -d)
ctr=ticketd-test-$$
emulator_pid=
cleanup() {
  "${podman[@]}" rm -f "$ctr" >/dev/null 2>&1 || true
  [ -n "${KEEP_IMAGE:-}" ] || podman rmi -f "$image" >/dev/null 2>&1 || true
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "building the image"
container/rootfs.sh "$work/ctx/out" "$bin"
sed -n '/^FROM scratch/,$p' Containerfile | sed 's|^COPY --from=build /out/ /$|COPY out/ /|' >"$work/ctx/Containerfile"
grep -q '^COPY out/ /$' "$work/ctx/Containerfile" || { say "Containerfile's runtime stage changed shape"; exit 1; }
buildah bud --quiet --layers=false -t "$image" -f "$work/ctx/Containerfile" "$work/ctx" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
user=$(podman image inspect --format '{{.Config.User}}' "$image")
say "image $image: $size bytes, user $user"
[ "$user" = "65532:65532" ] || { say "the image does not run as 65532"; exit 1; }

port() { shuf -i 20000-59999 -n 1; }
emu_port=$(port)
metrics_port=$(port)
export ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIcontainertest
export ALIBABA_CLOUD_ACCESS_KEY_SECRET=container-test-secret-0123456789
"$target_dir/debug/ticketd" emulator --listen "127.0.0.1:$emu_port" >"$work/emulator.log" 2>&1 &
emulator_pid=$!

mkdir -p "$work/tokens" "$work/state"
chown 65532:65532 "$work/tokens" "$work/state"
cat >"$work/ticketd.toml" <<TOML
socket = "/run/ticketd/ticketd.sock"
metrics_listen = "127.0.0.1:$metrics_port"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "http://127.0.0.1:$emu_port"
ticket_lifetime = "1h"
token_lifetime = "30s"

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/dash.json"
mode = "0644"

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/dash.token"
format = "token"
mode = "0644"
TOML
chmod 0644 "$work/ticketd.toml"

limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
mounts=(-v "$work/ticketd.toml:/etc/ticketd/ticketd.toml:ro" -v "$work/tokens:/run/ticketd" -v "$work/state:/var/lib/ticketd")
keys=(-e ALIBABA_CLOUD_ACCESS_KEY_ID -e ALIBABA_CLOUD_ACCESS_KEY_SECRET)

say "sidecar: running the image"
"${podman[@]}" run -d --name "$ctr" --network host --read-only "${limits[@]}" "${mounts[@]}" "${keys[@]}" "$image" >/dev/null
for _ in $(seq 1 100); do
  [ -s "$work/tokens/dash.token" ] && break
  sleep 0.2
done
[ -s "$work/tokens/dash.token" ] || { say "no token written"; "${podman[@]}" logs "$ctr"; exit 1; }
owner=$(stat -c %u:%g "$work/tokens/dash.token")
say "token written by $owner: $(stat -c '%a %s bytes' "$work/tokens/dash.token")"
[ "$owner" = "65532:65532" ] || { say "token not owned by 65532"; exit 1; }
grep -q '"access_token"' "$work/tokens/dash.json"
pid_user=$("${podman[@]}" top "$ctr" user | tail -n 1 | tr -d ' ')
say "process user inside the container: $pid_user"
[ "$pid_user" = "ticketd" ] || [ "$pid_user" = "65532" ] || { say "not running as the ticketd user"; exit 1; }
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$metrics_port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$metrics_port/readyz" | grep -q '"ready":true'
curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -q 'ticketd_token_expiry_timestamp_seconds{ticket="dash",kind="sls"}'
say "readyz and metrics answer over TCP"
# The CLI inside the image reads the socket (what an exec probe would run).
"${podman[@]}" exec "$ctr" /usr/bin/ticketd status --socket /run/ticketd/ticketd.sock | grep -q dash
"${podman[@]}" stop -t 10 "$ctr" >/dev/null
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$ctr")
say "sidecar stopped with exit code $code"
[ "$code" = 0 ] || { "${podman[@]}" logs "$ctr"; exit 1; }
"${podman[@]}" rm "$ctr" >/dev/null

say "init container: run --once"
rm -f "$work/tokens/dash.json" "$work/tokens/dash.token"
mkdir -p "$work/state2" && chown 65532:65532 "$work/state2"  # no saved token: a fresh CreateTicket
init_mounts=(-v "$work/ticketd.toml:/etc/ticketd/ticketd.toml:ro" -v "$work/tokens:/run/ticketd" -v "$work/state2:/var/lib/ticketd")
"${podman[@]}" run --rm --network host --read-only "${limits[@]}" "${init_mounts[@]}" "${keys[@]}" "$image" run --once
[ -s "$work/tokens/dash.token" ] && [ "$(stat -c %u "$work/tokens/dash.token")" = 65532 ]
say "run --once wrote the token and exited 0"
say "passed in $(( $(date +%s) - start )) s"
