#!/usr/bin/env bash
# The device kit for GPU runs (docs/GPU.md): ../shared/device/prepare.sh, then node_modules re-packed without what a
# device run never loads, so tracked tree + kit stay within the 64 MiB a run may carry. Left out: lint/format tools,
# the TypeScript compiler, the deploy-test schemas, the openai client (server/e2e tests only), vite's CSS engine, and
# sharp's libvips (image input loads it lazily; image tests and image serving need a full `npm ci`).
# Usage (after npm ci): bash scripts/device-kit.sh   →  carry [".device"], begin with: source .device/prelude.sh &&
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
prepare=../shared/device/prepare.sh
[ -f "$prepare" ] || { echo "device-kit: $prepare not found (the workplace's device kit)" >&2; exit 1; }
bash "$prepare" >/dev/null 2> >(grep -v "TOO LARGE" >&2) # its total counts the full node_modules
tar --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
  --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/typescript' \
  --exclude='node_modules/@typescript/*' --exclude='node_modules/@typescript-eslint' \
  --exclude='node_modules/typescript-eslint' --exclude='node_modules/eslint' --exclude='node_modules/@eslint' \
  --exclude='node_modules/@eslint-community' --exclude='node_modules/eslint-scope' \
  --exclude='node_modules/eslint-visitor-keys' --exclude='node_modules/prettier' \
  --exclude='node_modules/kubernetes-models' --exclude='node_modules/@kubernetes-models' \
  --exclude='node_modules/dockerfile-ast' --exclude='node_modules/openai' \
  --exclude='node_modules/lightningcss*' --exclude='node_modules/@img' --exclude='node_modules/sharp' \
  -cf - node_modules | xz -T0 -6 > .device/node_modules.tar.xz
kit=$(find .device -type f -printf '%s\n' | awk '{s += $1} END {print s}')
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s | awk '{s += $1} END {print s}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "device kit $(mib "$kit") MiB + tree $(mib "$tree") MiB = $(mib $((kit + tree))) MiB of 64"
[ $((kit + tree)) -lt $((63 * 1048576)) ] || { echo "device-kit: too large to carry" >&2; exit 1; }
echo 'carry [".device"] and begin each command with: source .device/prelude.sh &&'
