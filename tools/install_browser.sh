#!/usr/bin/env bash
# Debian's Chromium for the app's browser tests (tests/test_app_browser.py drives it with Playwright's Python
# package through executable_path: Playwright's own browser download is not reachable here).
set -euo pipefail
command -v chromium >/dev/null && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
command -v chromium
