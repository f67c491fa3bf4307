#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the admin page's end-to-end test
# (tests/it/admin_page.rs runs this before it starts a browser). Idempotent: does nothing when
# both are already there. Needs root, or sudo without a password.
exec "$(dirname "$0")/install-debian.sh" "chromium chromedriver" chromium chromium-driver
