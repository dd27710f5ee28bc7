#!/usr/bin/env bash
# Redocly CLI's recommended ruleset on the contracts, for `make lint` and the tests.
#   scripts/redocly.sh install         Node and npm from Debian if missing, then
#                                      @redocly/cli at a pinned version into .tools/
#                                      (once: a stamp per version makes reruns no-ops)
#   scripts/redocly.sh lint [FILE...]  install, then lint FILEs (default: openapi/*/*.yaml)
# Rules and their levels: redocly.yaml at the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

# 2.x needs Node >= 20.19 or >= 22.12; Debian 12's own Node 18 gets the last 1.x.
REDOCLY_VERSION=2.77.0
REDOCLY_VERSION_OLD_NODE=1.34.20
TOOLS=.tools
# No telemetry and no update checks: lint runs must not call out.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

install() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
    fi
    local version
    version=$(node -e '
        const [major, minor] = process.versions.node.split(".").map(Number);
        const modern = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major > 22;
        console.log(modern ? process.argv[1] : process.argv[2]);
    ' "$REDOCLY_VERSION" "$REDOCLY_VERSION_OLD_NODE")
    local stamp="$TOOLS/.redocly-$version"
    if [[ ! -f $stamp || ! -x $TOOLS/node_modules/.bin/redocly ]]; then
        mkdir -p "$TOOLS"
        npm install --prefix "$TOOLS" --save-exact --no-audit --no-fund --loglevel=error \
            "@redocly/cli@$version"
        rm -f "$TOOLS"/.redocly-*
        touch "$stamp"
    fi
}

case "${1:-}" in
    install)
        install
        ;;
    lint)
        shift
        install
        # every contract; openapi/components/ holds shared fragments, not documents
        if (($# == 0)); then set -- $(ls openapi/*/*.yaml | grep -v '^openapi/components/'); fi
        exec "$TOOLS/node_modules/.bin/redocly" lint --config redocly.yaml "$@"
        ;;
    *)
        echo "usage: $0 install | lint [FILE...]" >&2
        exit 2
        ;;
esac
