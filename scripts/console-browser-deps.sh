#!/usr/bin/env bash
# Installs what the console's browser test (crates/axum/tests/console_browser.rs) needs:
# Debian's Chromium and its WebDriver (chromedriver), fonts for CJK and emoji names, and
# axe-core (the accessibility checker the test injects into each page) from npm into
# target/browser-deps/. Installs only what is missing; apt-get needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

AXE_VERSION="${AXE_VERSION:-4.14.1}"
DEPS_DIR="target/browser-deps"

missing=()
for package in chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
command -v npm >/dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$DEPS_DIR/node_modules/axe-core/axe.min.js" ]; then
    echo "installing axe-core $AXE_VERSION into $DEPS_DIR"
    mkdir -p "$DEPS_DIR"
    npm install --silent --no-audit --no-fund --no-save --prefix "$DEPS_DIR" "axe-core@$AXE_VERSION" >/dev/null
fi

echo "browser test dependencies: $(command -v chromium), $(command -v chromedriver), $DEPS_DIR/node_modules/axe-core/axe.min.js"
