#!/bin/sh
# Re-vendors axe-core's axe.min.js (and its licences) from the npm registry into this folder.
# axe-core is a test tool for tests/e2e/test_accessibility.py only: it is never served to users.
# `npm pack` checks the tarball against the registry's integrity hash before anything is copied.
#   tests/e2e/vendor/axe-core/update.sh            # the latest release
#   tests/e2e/vendor/axe-core/update.sh 4.14.1     # a given version
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-$(npm view axe-core version)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "axe-core@$version" >/dev/null && tar xzf "axe-core-$version.tgz")
cp "$work/package/axe.min.js" "$work/package/LICENSE" "$work/package/LICENSE-3RD-PARTY.txt" "$here/"
echo "$version" >"$here/VERSION"
echo "axe-core $version vendored into $here"
