#!/usr/bin/env bash
# The browser tests (tests/test_web_browser.py) drive Debian's chromium through its chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver); install both when either is missing. Idempotent.
set -euo pipefail
if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium chromium-driver >/dev/null
