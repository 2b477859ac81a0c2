#!/usr/bin/env bash
# Start the real services the test suite talks to, if they are not already up.
# Tests never skip because a service is missing: if this cannot start one, they fail.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL is not reachable at 127.0.0.1:5432" >&2; exit 1; }
fi

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
if command -v redis-server >/dev/null 2>&1 && ! redis_up; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/hcp-redis.log
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
fi
echo "services: PostgreSQL up$(redis_up && echo ', Redis up')"

# Docker Engine (Debian's docker.io): the notary's isolation mode and the provider agent run
# containers through it.
if ! command -v dockerd >/dev/null 2>&1; then
  echo "installing Docker Engine (docker.io)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q docker.io >/tmp/hcp-docker-install.log 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q docker.io >/tmp/hcp-docker-install.log 2>&1; } \
    || { echo "cannot install docker.io (see /tmp/hcp-docker-install.log)" >&2; exit 1; }
fi
docker_up() { docker info >/dev/null 2>&1; }
if ! docker_up; then
  echo "starting dockerd"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO sh -c 'nohup dockerd >/tmp/hcp-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker_up && break; sleep 0.5; done
  docker_up || { echo "Docker Engine did not start (see /tmp/hcp-dockerd.log)" >&2; exit 1; }
fi

# The reference notary task's toolchain (C → wasm32-wasi): its test rebuilds train.wasm.
if ! command -v clang-14 >/dev/null 2>&1 || [ ! -d /usr/lib/wasm32-wasi ] \
   || ! ls /usr/lib/llvm-14/lib/clang/*/lib/wasi >/dev/null 2>&1; then
  echo "installing clang-14 and wasi-libc"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  pkgs="clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $pkgs >/tmp/hcp-wasi-install.log 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $pkgs >/tmp/hcp-wasi-install.log 2>&1; } \
    || { echo "cannot install the wasm32-wasi toolchain (see /tmp/hcp-wasi-install.log)" >&2; exit 1; }
fi

# solc and anvil (and the IPFS reference tools) from npm, pinned in package.json and
# package-lock.json. `npm ci` installs exactly the lock and never rewrites it, so the test
# command leaves the checkout clean (the lock carries every platform's optional packages).
if [ ! -x node_modules/.bin/anvil ] || [ ! -x node_modules/.bin/solcjs ] || [ ! -d node_modules/kubo-rpc-client ] \
   || [ ! -d node_modules/ipfs-unixfs-importer ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the npm tools (solc, anvil, kubo-rpc-client, ipfs-unixfs-importer)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "services: Docker up, solc $(node_modules/.bin/solcjs --version | head -n1), anvil ready"

# Prometheus, promtool, Alertmanager and amtool (Debian packages): the alert-rule tests and
# the metrics tests run the real ones.
"$(dirname "$0")/ensure-ops-tools.sh"
