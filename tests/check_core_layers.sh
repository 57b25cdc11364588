#!/bin/sh
# check_core_layers.sh [BUILD]: the core's layering, read from the objects'
# real symbol references (nm), as `make layers-core` runs it. Fails, naming
# each offending pair and the symbols behind it, when:
#
#  1. two core objects (core/*.o, core/cc/*.o) call each other: a mutual
#     pair. Calls go one way; where one side must reach the other, it does
#     so through what it is given (ctx.c gives its connections c->ctx and
#     ctx->host, conn.h). The pairs in KNOWN below are the ones left inside
#     the connection (conn.c and the files that split its features off,
#     sharing conn.h) and keyed mode; a pair not listed fails.
#  2. the protocol (core/*.o) names anything in core/cc/ but cc/cc.o, the
#     controllers' front door (rudp_cc_find, rudp_cc_default, setup, seed,
#     switch): it reaches a controller only through the rudp_cc_ops table
#     cc.h defines and cc.c hands out.
#  3. a controller file (core/cc/*.o) names anything of the protocol: it
#     may use core/cc/ and the base utilities in CC_BASE only.
#
# Within core/cc/ calls go cc.c -> cc_<name>.c -> cc_common.c; rule 1
# keeps them so. Objects are those of the current sources (a stale object
# of a moved file is ignored). Exit 0 and one summary line when all hold.
set -eu

BUILD=${1:-build}
cd "$(dirname "$0")/.."

# Mutual pairs allowed, by object name under core/, each "a b" with a < b.
# Why each, in KNOWN's order:
#  conn conn_app: the application's calls move the state; the linger
#    timer aborts through conn_app.c.
#  conn conn_input: set-up hands recovery conn_input.c's acked/lost
#    callbacks; input moves the state (established, FIN, fail).
#  conn path: the path's timer runs from conn.c's; a move probes at once.
#  conn_app conn_input: write() asks the send space the ACK side keeps;
#    input tunes the window (DATA_BLOCKED) and aborts a released one.
#  conn_input tune: the send space obeys NOTSENT_LOWAT; tune.c's new
#    limits wake a waiting writer by it.
#  conn_output path: challenges go out as DATA packets (send_control);
#    the packet builder asks the path what may go.
#  crypto keyreset: keyed mode's halves share subkeys and tokens.
#  conn standby: the standby's timer runs from conn.c's, a probe timeout
#    copies its probe there; a handover probes at once.
#  path standby: challenges, answers and the newest packet go to the
#    standby first; a handover moves the path (path.c's move, new path).
KNOWN='conn conn_app
conn conn_input
conn path
conn standby
conn_app conn_input
conn_input tune
conn_output path
crypto keyreset
path standby'
# What core/cc/ may call outside itself.
CC_BASE='siphash'

objs=
for src in core/*.c core/cc/*.c; do
    o=$BUILD/${src%.c}.o
    if [ ! -f "$o" ]; then
        echo "check_core_layers: $o missing (make lib first)" >&2
        exit 2
    fi
    objs="$objs $o"
done

# One line per reference from one core object to a global symbol another
# core object defines: "user definer symbol", names relative to core/.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in $objs; do
    name=${o#"$BUILD"/core/}
    name=${name%.o}
    nm --defined-only -g "$o" | awk -v n="$name" 'NF == 3 { print $3, n }' >>"$tmp/defs"
    nm -u "$o" | awk -v n="$name" '{ print $2, n }' >>"$tmp/uses"
done
sort -o "$tmp/defs" "$tmp/defs"
sort -o "$tmp/uses" "$tmp/uses"
join "$tmp/uses" "$tmp/defs" | awk '$2 != $3 { print $2, $3, $1 }' | sort >"$tmp/refs"

printf '%s\n' "$KNOWN" >"$tmp/known"
awk -v ccbase=" $CC_BASE " -v cclist="$CC_BASE" -v knownf="$tmp/known" '
    BEGIN { while ((getline l < knownf) > 0) if (l != "") known[l] = 1 }
    { calls[$1 " " $2] = calls[$1 " " $2] " " $3; edge[$1 " " $2] = 1 }
    END {
        bad = 0; pairs = 0; knownused = 0
        for (e in edge) {
            split(e, ab, " "); a = ab[1]; b = ab[2]
            if (a < b && ((b " " a) in edge)) {
                pairs++
                if ((a " " b) in known) { knownused++; continue }
                printf "core layers: %s.o and %s.o call each other\n", a, b
                printf "  %s.o calls%s\n  %s.o calls%s\n", a, calls[a " " b], b, calls[b " " a]
                bad++
            }
            acc = a ~ /^cc\//; bcc = b ~ /^cc\//
            if (!acc && bcc && b != "cc/cc") {
                printf "core layers: %s.o names core/%s.o, not through cc/cc.c:%s\n", a, b, calls[e]
                bad++
            }
            if (acc && !bcc && index(ccbase, " " b " ") == 0) {
                printf "core layers: controller %s.o names the protocol'"'"'s %s.o:%s\n", a, b, calls[e]
                bad++
            }
        }
        for (k in known) {
            split(k, ab, " ")
            if (!((ab[1] " " ab[2]) in edge && (ab[2] " " ab[1]) in edge))
                printf "core layers: note: known pair %s is gone; drop it from KNOWN\n", k
        }
        if (bad) {
            printf "core layers: %d violation(s)\n", bad
            exit 1
        }
        printf "core layers: ok (%d references between core objects; %d mutual pairs, all known; core/cc/ uses only itself and %s)\n", NR, pairs, cclist
    }' "$tmp/refs"
