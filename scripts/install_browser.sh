#!/usr/bin/env bash
# Headless Chromium for the browser tests: Debian's chromium and chromium-driver (never a browser
# download by a test tool). Needs root (or sudo) when they are missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >&2
