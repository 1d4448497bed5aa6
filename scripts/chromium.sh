#!/bin/sh
# Headless Chromium for the browser test of `sessionpacks report --html`
# (tests/cli/test_report_html.py): prints the path of the binary last.
#
# Usage:  scripts/chromium.sh [path]   install Debian's chromium when it is missing; print its path
#         scripts/chromium.sh check    print the path if it is installed, else exit 3
# Env:    SESSIONPACKS_CHROMIUM      a binary to use instead (printed as it is if executable)
#         SESSIONPACKS_CHROMIUM_INSTALL=0  never install: exit 3 if it is missing
#
# Only Debian's package is installed (apt-get, as root or through sudo): no browser build is
# downloaded from anywhere else. The test runs it on file:// pages only, with every host name
# resolving to nothing.
set -eu
COMMAND=${1:-path}

case "$COMMAND" in
path | check) ;;
*)
    echo "usage: $0 [path|check]" >&2
    exit 2
    ;;
esac

found() {
    if [ -n "${SESSIONPACKS_CHROMIUM:-}" ] && [ -x "$SESSIONPACKS_CHROMIUM" ]; then
        echo "$SESSIONPACKS_CHROMIUM"
        return 0
    fi
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if found; then
    exit 0
fi
if [ "$COMMAND" = check ] || [ "${SESSIONPACKS_CHROMIUM_INSTALL:-1}" = 0 ]; then
    echo "chromium is not installed" >&2
    exit 3
fi

if [ "$(id -u)" = 0 ]; then
    AS=""
elif command -v sudo >/dev/null 2>&1; then
    AS="sudo"
else
    echo "chromium is not installed, and installing it needs root (or sudo)" >&2
    exit 3
fi
echo "installing chromium (Debian)..." >&2
$AS apt-get update >&2
$AS env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
found
