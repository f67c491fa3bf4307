#!/usr/bin/env bash
# Installs Debian's ffmpeg (which brings ffprobe) for the media corpus that the tests make at
# test time (tests/it/common/media.rs runs this before it calls ffmpeg), and ImageMagick, whose
# `convert` is the fix the upload gate suggests for CMYK JPEGs (ffmpeg 5.1 cannot decode them;
# tests/it/codecs.rs runs every suggested fix). Idempotent: does nothing when all are already
# there. Needs root, or sudo without a password.
exec "$(dirname "$0")/install-debian.sh" "ffmpeg ffprobe convert" ffmpeg imagemagick
