#!/bin/sh
# Installs everything ffdp builds, tests and benchmarks against, from Debian packages.
set -eu
pkgs="build-essential cmake pkg-config libnifti2-dev zlib1g-dev libdeflate-dev libcjson-dev libzstd-dev libblosc-dev libopenmpi-dev openmpi-bin mricron-data libinsighttoolkit5-dev"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing > /dev/null
