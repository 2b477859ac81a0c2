#!/usr/bin/env bash
# Install Prometheus, promtool, Alertmanager and amtool (Debian's `prometheus` and
# `prometheus-alertmanager`) if they are missing. Idempotent, and a no-op when all four are
# there. The packages' own services are not started: `hcp ops prometheus start` runs them
# beside the platform, and the tests start their own.
set -euo pipefail

have_all() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
    && { command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1; } \
    && command -v amtool >/dev/null 2>&1
}

if ! have_all; then
  echo "installing Prometheus and Alertmanager (prometheus, prometheus-alertmanager)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  pkgs="prometheus prometheus-alertmanager"
  log=/tmp/hcp-ops-tools-install.log
  # Without recommends: no node exporter or other extra daemons.
  install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $pkgs >"$log" 2>&1; }
  install || { $SUDO apt-get update -q >/dev/null 2>&1 && install; } \
    || { echo "cannot install $pkgs (see $log)" >&2; exit 1; }
  # Debian starts the packaged services where an init system runs: they would hold
  # 9090/9093 with the packages' own configs. Stop them; hcp starts its own.
  for svc in prometheus prometheus-alertmanager; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
  have_all || { echo "Prometheus tools still missing after install" >&2; exit 1; }
fi
echo "ops tools: $(prometheus --version 2>&1 | head -n1 | cut -d' ' -f1-3), $(amtool --version 2>&1 | head -n1 | cut -d' ' -f1-3)"
