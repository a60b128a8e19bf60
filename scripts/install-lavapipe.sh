#!/usr/bin/env bash
# Installs Mesa's lavapipe (a Vulkan driver that runs on the CPU) so Dawn finds an adapter on a machine without a
# GPU. Debian bookworm's own Mesa 22 is too old for Dawn; bookworm-backports carries Mesa 25. The mirror is read
# from the apt sources already configured (never hard-coded). Idempotent; needs root.
set -euo pipefail

lavapipe_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && lavapipe_version | grep -Eq '^(2[4-9]|[3-9][0-9])\.'; then
  echo "lavapipe: Mesa $(lavapipe_version) already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "lavapipe: installing needs root; run: sudo bash $0" >&2
  exit 1
fi
. /etc/os-release
if [ "${ID:-}" != debian ]; then
  echo "lavapipe: automatic install supports Debian only (found ${PRETTY_NAME:-unknown});" \
       "install Mesa >= 24 Vulkan drivers (package mesa-vulkan-drivers or similar) from your distribution" >&2
  exit 1
fi
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}

# The Debian mirror, from deb822 sources (bookworm's default) or the one-line sources.list format.
uri=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  uri=$(awk '/^URIs:/{print $2; exit}' "$f")
  [ -n "$uri" ] && break
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file|mirror):/) {print $i; exit}}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || { echo "lavapipe: no Debian mirror found in /etc/apt/sources.list{,.d}" >&2; exit 1; }

suite="${codename}-backports"
if [ "$codename" = bookworm ]; then
  list=/etc/apt/sources.list.d/dawnllm-backports.sources
  if ! grep -rqs "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" "$suite" > "$list"
    echo "lavapipe: added $suite from $uri ($list)"
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t "$suite" mesa-vulkan-drivers libvulkan1 >/dev/null
else
  # Newer Debian releases ship a recent enough Mesa in the main suite.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
echo "lavapipe: Mesa $(lavapipe_version) installed"
