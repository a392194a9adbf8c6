#!/usr/bin/env bash
# Debian's Chromium and its WebDriver, for the browser test of the HTML run report
# (tests/browser/). Installs only what is missing, with apt-get as root (as .ci/run
# runs) or through passwordless sudo. A Chrome or Chromium already installed with its
# chromedriver (as on hosted CI images) is used as it is. Where nothing can be
# installed it says why and exits 0: the browser test then skips with that reason
# (and fails under CI, so a missing browser never passes unnoticed).
set -euo pipefail

have_browser() {
    command -v chromedriver >/dev/null 2>&1 && {
        command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
            command -v google-chrome >/dev/null 2>&1
    }
}

if have_browser; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no apt-get here; install Chromium and chromedriver yourself" >&2
    exit 0
fi
if [ "$(id -u)" = "0" ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install_browser: not root; run: sudo apt-get install -y chromium chromium-driver" >&2
    exit 0
fi
echo "install_browser: apt-get install chromium chromium-driver (for tests/browser/)"
# Another apt run (unattended upgrades, a parallel install) may hold the lock a while.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
have_browser
