#!/usr/bin/env bash
# Installs Debian packages the tests need, when the commands they provide are missing:
#   scripts/install-debian.sh "CMD CMD..." PACKAGE...
# Idempotent: does nothing when every command is there. Needs root, or sudo without a
# password. Several test threads may call it at once; apt's own lock makes the later ones wait.
set -euo pipefail

commands="$1"
shift
have() {
    for c in $commands; do
        command -v "$c" >/dev/null || return 1
    done
}
if have; then
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
have
