#!/usr/bin/env bash
# Installs the system packages the tests use (real servers, no mocks): PostgreSQL 15,
# Chromium, espeak-ng, sox, sipp, tcpdump (SIP capture proof). Idempotent: installs only what is missing.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v sox >/dev/null || need+=(sox)
command -v sipp >/dev/null || need+=(sip-tester)
command -v tcpdump >/dev/null || need+=(tcpdump)
# Loopback-only network namespaces for media tests (`unshare -n` + `ip link set lo up`).
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
# Debian bookworm's PostgreSQL 15 (tests run it as the `postgres` system user it creates).
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
