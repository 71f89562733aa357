#!/usr/bin/env bash
# Headless Chromium for the report's browser tests (Debian's package). Idempotent: does
# nothing when /usr/bin/chromium exists. Prints the browser's path; exits non-zero when it
# cannot be installed (the tests then skip, or fail under ORDERLAKE_REQUIRE_BROWSER=1).
set -euo pipefail
browser=${ORDERLAKE_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$browser" ]; then
    if ! command -v apt-get >/dev/null; then
        echo "install-chromium: no $browser and no apt-get to install it" >&2
        exit 1
    fi
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >&2
fi
"$browser" --version >&2
echo "$browser"
