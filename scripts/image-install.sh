#!/usr/bin/env bash
# The container image's system install steps, in one place: the Dockerfile runs this, and
# test/deploy/image_install.test.ts runs it on a Debian machine, so the steps are exercised for real.
#   image-install.sh gpu   Vulkan loader only: the NVIDIA driver's Vulkan ICD comes from the host through the
#                          NVIDIA container toolkit (NVIDIA_DRIVER_CAPABILITIES must include `graphics`)
#   image-install.sh cpu   also Mesa lavapipe (CPU Vulkan, bookworm-backports) for GPU-less testing
# Idempotent; needs root; Debian only. Nothing here runs when the container starts.
set -euo pipefail
variant=${1:-}
case "$variant" in
  gpu | cpu) ;;
  *)
    echo "image-install: expected one argument, gpu or cpu; found '${variant}'" >&2
    exit 2
    ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "image-install: needs root (it installs Debian packages)" >&2
  exit 1
fi
. /etc/os-release
if [ "${ID:-}" != debian ]; then
  echo "image-install: supports Debian only, found ${PRETTY_NAME:-unknown}" >&2
  exit 1
fi

need=()
for pkg in libvulkan1 ca-certificates; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "image-install: Vulkan loader $(dpkg-query -W -f='${Version}' libvulkan1)"

if [ "$variant" = cpu ]; then
  bash "$(dirname "$0")/install-lavapipe.sh"
fi

# Keep the image small: apt's lists are not needed at run time.
if [ "${IMAGE_INSTALL_CLEAN:-0}" = 1 ]; then
  rm -rf /var/lib/apt/lists/*
fi
