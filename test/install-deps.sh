#!/usr/bin/env bash
# Installs the Debian packages the project needs to build, test, demo and benchmark.
# Called by .ci/run, make test, make demo and make bench; does nothing when all are present.
set -euo pipefail
pkgs=(build-essential postgresql-15 postgresql-server-dev-15
      libwebsockets-dev libjansson-dev libipc-run-perl jq python3 universal-ctags clang-14 llvm-14 pkg-config
      procps psmisc curl openssl chromium)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js runs the WebSocket and browser tests; its packages come from the npm registry
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "node and npm are missing (run as root to install them)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -d "$here/ws/node_modules/ws" ]; then
    (cd "$here/ws" && npm ci --no-audit --no-fund --loglevel=error)
fi
# the browser test (test/integration/61_browser.sh) drives Debian's chromium (installed above)
# through playwright-core, which must not download a browser of its own
if [ ! -d "$here/browser/node_modules/playwright-core" ]; then
    (cd "$here/browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
