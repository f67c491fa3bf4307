#!/usr/bin/env bash
# Installs Debian's ffmpeg (which brings ffprobe) for the media corpus that the tests make at
# test time (tests/it/common/media.rs runs this before it calls ffmpeg), and ImageMagick, whose
# `convert` is the fix the upload gate suggests for CMYK JPEGs (ffmpeg 5.1 cannot decode them;
# tests/it/codecs.rs runs every suggested fix). Idempotent: does nothing when all are already
# there. Needs root, or sudo without a password.
set -euo pipefail

have() { command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && command -v convert >/dev/null; }
if have; then
    exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
# Several test binaries may call this at once; apt's own lock makes the second one wait.
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ffmpeg imagemagick >/dev/null
have
