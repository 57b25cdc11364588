#!/bin/sh
# The arm64 packages make aarch64 needs that cannot be installed beside
# their amd64 twins, unpacked (not installed) into a directory of their
# own: Debian 12 ships them without "Multi-Arch: same", so dpkg takes
# netcat-openbsd:arm64 for a replacement of the host's nc, python3.11-minimal:arm64
# for one of the host's python3.11, and libcriterion3:arm64 pulls in
# libnanomsg5:arm64, which would remove the host's Criterion.
# integration/deps.sh installs the rest (their libraries among them: libbsd0,
# libpython3.11-stdlib, libgit2-1.5, libffi8 are co-installable).
#   integration/aarch64/root.sh DIR
# Fetched by apt-get download, unpacked by dpkg-deb -x; DIR/.done names
# what it holds, so a second run with the same list costs nothing.
set -eu
dir=$1
pkgs="netcat-openbsd:arm64 python3.11-minimal:arm64 libcriterion3:arm64 libcriterion-dev:arm64 libnanomsg5:arm64"
[ "$(cat "$dir/.done" 2>/dev/null)" = "$pkgs" ] && exit 0
rm -rf "$dir"
mkdir -p "$dir/debs"
# shellcheck disable=SC2086 # the list's words are packages
(cd "$dir/debs" && apt-get download -q -o APT::Sandbox::User=root $pkgs >/dev/null) ||
    { echo "aarch64: apt-get download $pkgs failed (apt-get update first?)" >&2; exit 1; }
for d in "$dir"/debs/*.deb; do
    dpkg-deb -x "$d" "$dir"
done
rm -rf "$dir/debs"
echo "$pkgs" >"$dir/.done"
