#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the browser test of the HTML run report
# (tests/browser/). Installs only what is missing; needs root (as CI runs) and apt-get.
# Without either it says why and exits 0: the browser test then skips with that reason.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get here; install Chromium and chromedriver yourself" >&2
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install_browser: not root; run: sudo apt-get install -y chromium chromium-driver" >&2
    exit 0
fi
echo "install_browser: apt-get install chromium chromium-driver (for tests/browser/)"
export DEBIAN_FRONTEND=noninteractive
# Another apt run (unattended upgrades, a parallel install) holds the lock for a while.
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
