#!/bin/sh
# Install the Debian packages a make target needs, only those missing.
# Usage: integration/deps.sh GROUP...   (groups: build test fuzz bench compat battery cpython deb aarch64)
# Runs `apt-get update` once, and only when something is missing.
set -eu

pkgs_build="gcc make libc6-dev libcriterion-dev uthash-dev libsodium-dev libssl-dev pkg-config"
# golang-go builds the Go programs of integration/tests/reach/ (offline,
# from the standard library only); caddy is a real Go server from Debian
# run there under the supervisor (as a plain file server, not its service);
# gcc-12-multilib builds the 32-bit program that shows a 32-bit program
# keeps kernel TCP, and says so (t_supervise_i386.sh): gcc -m32 -static
# needs 32-bit libgcc (lib32gcc-12-dev), not only libc6-dev-i386, and an
# asm/ directory, which the test links itself: gcc-multilib, whose
# /usr/include/asm symlink it was, conflicts with every cross compiler in
# Debian 12, gcc-aarch64-linux-gnu (make aarch64) among them.
# wireguard-go and wireguard-tools: a real WireGuard tunnel between two
# namespaces (t_pmtu_wireguard.sh, and bench B21): these kernels have no
# WireGuard module, wireguard-go makes the device on /dev/net/tun.
pkgs_test="curl netcat-openbsd python3 iproute2 procps iputils-ping tshark man-db groff-base gnuplot-nox nftables git golang-go caddy gcc-12-multilib wireguard-go wireguard-tools"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_bench="gnuplot-nox iperf3 curl python3 redis-server redis-tools nginx-light wrk linux-perf nftables wireguard-go wireguard-tools"
pkgs_compat="nginx-light wrk redis-server redis-tools socat openssh-server openssh-client postgresql iperf3"
# integration/tests/apps/t_*.sh that source lib/battery.sh (each program over
# kernel TCP, then under the shim)
pkgs_battery="mariadb-server mariadb-client memcached libmemcached-tools nodejs haproxy lighttpd apache2-utils rsync vsftpd dnsmasq-base bind9-dnsutils mosquitto mosquitto-clients openjdk-17-jdk-headless"
pkgs_cpython="python3 libpython3.11-testsuite" # integration/compat/cpython_suite.sh, by hand
# make deb: dpkg-buildpackage (dpkg-dev) and dh (debhelper); the package
# declares Rules-Requires-Root: no, so no fakeroot
pkgs_deb="dpkg-dev debhelper"
# make aarch64: the cross compiler, qemu-user to run what it builds, and the
# arm64 libraries the build links (multiarch, beside the host's) or the
# smoke test's nc and python3.11 load. Criterion, nc and python3.11 for
# arm64 cannot be installed beside the host's: integration/aarch64/root.sh
# unpacks them apart.
pkgs_aarch64="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user uthash-dev libsodium-dev:arm64 libssl-dev:arm64 libffi8:arm64 libgit2-1.5:arm64 libbsd0:arm64 libpython3.11-stdlib:arm64 libexpat1:arm64 zlib1g:arm64"

want=""
for g in "$@"; do
    eval "want=\"\$want \${pkgs_$g}\""
done

# One dpkg-query for them all (one a package took ~0.3 s a call, and the
# compat and roaming tests each call this): a package it does not list as
# "install ok installed" is missing.
# A foreign package is named with its architecture (libsodium-dev:arm64),
# as binary:Package says it; a native one without (binary:Package adds
# ":amd64" to a Multi-Arch: same one, taken off here).
native=$(dpkg --print-architecture)
# shellcheck disable=SC2086
ok=$(dpkg-query -W -f='${binary:Package} ${Status}\n' $want 2>/dev/null |
    sed -n "s/:$native / /; s/ install ok installed\$//p")
ok=" $(echo $ok) "
missing=""
# (a package two groups list is named once)
for p in $want; do
    case "$ok$missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

# Not root: one line that names the command, and stop (make then stops).
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        cmd="sudo apt-get update && sudo apt-get install$missing"
    else
        cmd="apt-get update && apt-get install$missing (as root)"
    fi
    echo "deps: missing$missing; install with: $cmd" >&2
    exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# The tests start the servers these packages bring themselves, on private
# ports; the packages' own services (an FTP server, a database, a broker...
# on their standard ports) are not started by the install: a policy-rc.d
# that says no (invoke-rc.d and deb-systemd-invoke obey it) for the install
# only, where the machine has none of its own (a container's stays).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# integration/deps.sh, during apt-get install only\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    trap 'exit 1' INT TERM
fi
# The :arm64 packages need dpkg to know the architecture (multiarch): added
# here for the aarch64 group only, once (a second run finds it listed).
case " $missing " in
*:arm64\ *)
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
esac
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
