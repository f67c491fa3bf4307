#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the admin page's end-to-end test
# (tests/it/admin_page.rs runs this before it starts a browser). Idempotent: does nothing when
# both are already there. Needs root, or sudo without a password.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
# Several test binaries may call this at once; apt's own lock makes the second one wait.
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
