#!/bin/sh
# check_layers.sh [--found] [BUILD]: shim/'s layers keep their order (make layers).
#
# shim/ is layered in folders, each with one public header <layer>/<layer>.h
# for the layers above it (shim/base/base.h says what each holds). Calls go
# down only. Checked here, from the sources and the objects under BUILD
# (default build; make builds them first):
#   (a) includes: a file includes the headers of its own folder, the public
#       header of a lower layer (and the headers named in PUBLIC_EXTRA), of
#       core/ only rudp.h; and what it reaches through the headers it
#       includes is no other layer's private header either (a public
#       header that includes a private one of its own folder shows every
#       layer above a layout), nor is what a file of tests/ or tools/
#       reaches, but for a unit test's own module (tests/shim/test_NAME.c
#       may include shim/LAYER/NAME.h, the interface it tests);
#   (b) symbols (nm): an object references no symbol defined in a higher
#       layer, printed as "from.c -> to.c: symbol", nor core's internal
#       ones (rudp__*: the shim uses what core/rudp.h declares);
#   (c) per layer, the layers its objects use.
# Known exceptions are listed in tests/layers.allow, one "from to symbol" per
# line ("#include" as the symbol for an include): printed as known, to be
# removed; only one not listed fails, and so does a listed one that is gone
# (take its line out). Every shim/*.c must be in a layer folder. With
# --found, prints every exception found, in the list's form, and stops:
# what tests/layers.allow is made from.
set -eu

# The layers, highest first: the one place their order is declared. core/
# is below base (its own check, if present, runs at the end).
LAYERS="interpose lifetime ports engine state base core"
# Headers of a layer that the layers above may include or reach, besides
# its own <layer>/<layer>.h: the parts of a public header, which it
# includes (hooks.h, how features plug into the engine; porthand.h and
# portshare.h, ports.h's; state/front.h, state.h's and the one header a
# program outside the shim includes, the supervisor), and base/poison.h.
# Every other header of a layer folder is private to it (engine/types.h,
# internal.h, udpio.h, ports/portpriv.h...): a public header must not
# include one.
PUBLIC_EXTRA="base/poison.h engine/hooks.h ports/porthand.h ports/portshare.h state/front.h"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
found_only=0
if [ "${1:-}" = --found ]; then found_only=1; shift; fi
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ALLOW=$ROOT/tests/layers.allow
cd "$ROOT"

rank() { # the position of layer $1 in LAYERS (0: highest), or nothing
    i=0
    for l in $LAYERS; do
        [ "$l" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# Every source and header of shim/ is in a layer folder.
for f in shim/*.c shim/*.h; do
    [ -e "$f" ] || continue
    echo "NOT IN A LAYER: $f (move it to shim/<layer>/)"
    fail=1
done
for d in shim/*/; do
    d=${d%/}; l=${d#shim/}
    [ "$l" = man ] && continue
    [ -n "$(rank "$l")" ] || { echo "UNKNOWN LAYER FOLDER: $d (declare it in LAYERS)"; fail=1; }
done

# (a) includes, as "from to #include" (paths under shim/ or core/).
for f in shim/*/*.c shim/*/*.h; do
    [ -e "$f" ] || continue
    l=${f#shim/}; l=${l%%/*}
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r h; do
        case $h in
        */*) hl=${h%%/*}
             if [ "$hl" = "$l" ]; then continue; fi
             hr=$(rank "$hl")
             [ -n "$hr" ] || { echo "${f#shim/} $h #include"; continue; }
             case " $PUBLIC_EXTRA " in *" $h "*) pub=1 ;; *) pub=0 ;; esac
             [ "$h" = "$hl/$hl.h" ] && pub=1
             if [ "$hr" -lt "$(rank "$l")" ] || [ $pub -eq 0 ]; then
                 echo "${f#shim/} $h #include"
             fi ;;
        *)   if [ -e "shim/$l/$h" ]; then continue; fi
             if [ "$h" = rudp.h ] && [ -e core/rudp.h ]; then continue; fi
             if [ -e "core/$h" ]; then echo "${f#shim/} core/$h #include"
             else echo "${f#shim/} $h #include"; fi ;;
        esac
    done
done >"$tmp/found"

# (a) continued: what each file reaches through its includes. Every
# include (quoted or <>) of a file of shim/, resolved as the compiler
# finds it (beside the includer, or under -Ishim), is an edge; from each
# file of shim/, tests/ and tools/ the headers it reaches are followed,
# and a private header of another layer found so is reported as that
# file's include, its path kept for the message ($tmp/via).
find shim tests tools \( -name '*.c' -o -name '*.h' \) -type f 2>/dev/null | LC_ALL=C sort >"$tmp/files"
while read -r f; do
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]\([^">]*\)[">].*/\1/p' "$f" |
        sed "s|^|$f |"
done <"$tmp/files" >"$tmp/incs"
awk -v pub="$PUBLIC_EXTRA" -v via="$tmp/via" '
    function norm(p,   n, a, i, k, o) { # a path without "." and ".." steps
        n = split(p, a, "/"); k = 0
        for (i = 1; i <= n; i++) {
            if (a[i] == "." || a[i] == "") continue
            if (a[i] == ".." && k > 0 && o[k] != "..") { k--; continue }
            o[++k] = a[i]
        }
        p = o[1]; for (i = 2; i <= k; i++) p = p "/" o[i]
        return p
    }
    function layer(p,   a) { # a file of shim/<layer>/: the layer; else ""
        if (split(p, a, "/") == 3 && a[1] == "shim") return a[2]
        return ""
    }
    function short(p) { sub(/^shim\//, "", p); return p }
    function base(p) { sub(/^.*\//, "", p); return p }
    # A unit test of one module (tests/shim/test_NAME.c) may include that
    # module'"'"'s own header, private or not (shim/LAYER/NAME.h): the interface
    # it tests; no other private header.
    function tested(f, h,   m) {
        if (f !~ /^tests\/shim\/test_[a-z0-9_]+\.c$/) return 0
        m = base(f); sub(/^test_/, "", m); sub(/\.c$/, ".h", m)
        return base(h) == m
    }
    BEGIN { n = split(pub, a, " "); for (i = 1; i <= n; i++) public["shim/" a[i]] = 1 }
    FILENAME ~ /files$/ { have[$1] = 1; order[++nf] = $1; next }
    {
        d = $1; sub(/\/[^\/]*$/, "", d)
        r = norm(d "/" $2)
        if (!(r in have)) r = norm("shim/" $2)
        if ((r in have) && r ~ /^shim\// && !((($1) SUBSEP r) in seen)) {
            seen[$1, r] = 1
            nx[$1] = nx[$1] " " r
        }
    }
    END {
        for (i = 1; i <= nf; i++) {
            f = order[i]; lf = layer(f)
            if (f !~ /^(shim|tests|tools)\//) continue
            delete from; q = 0; qn = 0
            m = split(nx[f], st, " ")
            for (j = 1; j <= m; j++) if (!(st[j] in from)) { from[st[j]] = f; qu[++qn] = st[j] }
            while (q < qn) {
                h = qu[++q]
                lh = layer(h)
                if (lh != "" && lh != lf && !(h in public) && h != "shim/" lh "/" lh ".h" &&
                    !tested(f, h)) {
                    print short(f), short(h), "#include"
                    path = short(h); p = from[h]
                    while (p != f) { path = short(p) " -> " path; p = from[p] }
                    print short(f), short(h), path > via
                    continue # what it includes is its own layer'"'"'s business
                }
                m = split(nx[h], st, " ")
                for (j = 1; j <= m; j++) if (!(st[j] in from)) { from[st[j]] = h; qu[++qn] = st[j] }
            }
        }
    }' "$tmp/files" "$tmp/incs" >>"$tmp/found"

# (b) symbols: who defines what (shim's objects by layer folder, core's as
# core), and what each shim object takes from which.
# The objects of shim/'s layers whose source is there (a stale one's moved
# or went), in layer order; nm reads them all at once (-A: "OBJ:..." on
# each line): a process per object made this script take a minute.
# (the list in "$@": a BUILD path may hold spaces)
set --
for l in $LAYERS; do
    [ "$l" = core ] && continue
    for o in "$BUILD/shim/$l"/*.o; do
        [ -e "$o" ] || continue
        [ -e "shim/$l/$(basename "$o" .o).c" ] && set -- "$@" "$o"
    done
done
# nm -A's "OBJ:ADDR T NAME" or "OBJ: U NAME": this awk code takes OBJ
# into o and leaves the rest as the line, its fields as nm's without -A
# (OBJ may hold spaces)
# shellcheck disable=SC2016 # awk code, not the shell's
nm_obj='{ i = index($0, ".o:"); if (!i) next; o = substr($0, 1, i + 1); $0 = substr($0, i + 3) }'
# -> NAME LAYER/FILE.c LAYER
nm_src() {
    awk -v pre="$BUILD/shim/" -v want="$1" "$nm_obj"'{
        if (substr(o, 1, length(pre)) != pre) next
        f = substr(o, length(pre) + 1); sub(/\.o$/, ".c", f)
        l = f; sub(/\/.*/, "", l)
        if (want == "defs" && NF == 3 && $2 ~ /^[A-Z]$/) print $3, f, l
        if (want == "uses") print $NF, f, l
    }'
}
if [ $# -gt 0 ]; then
    nm -A --defined-only "$@" | nm_src defs >>"$tmp/defs"
    nm -A -u "$@" | nm_src uses >>"$tmp/uses"
fi
if [ ! -s "$tmp/uses" ]; then
    echo "check_layers: no objects under $BUILD/shim/<layer>/ (make first)"
    exit 1
fi
find "$BUILD/core" -name '*.o' -exec nm -A --defined-only {} + 2>/dev/null |
    awk -v pre="$BUILD/core/" "$nm_obj"'{
        f = "core/" substr(o, length(pre) + 1)
        if (NF == 3 && $2 ~ /^[A-Z]$/) { sub(/\.o$/, ".c", f); print $3, f, "core" }
    }' >>"$tmp/defs"

ranks=$(for l in $LAYERS; do printf '%s=%s ' "$l" "$(rank "$l")"; done)
awk -v ranks="$ranks" -v out="$tmp/edges" '
    BEGIN { n = split(ranks, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); r[kv[1]] = kv[2] } }
    FILENAME ~ /defs$/ { if (!($1 in df)) { df[$1] = $2; dl[$1] = $3 }; next }
    ($1 in df) && df[$1] != $2 {
        print $3, dl[$1] > out
        if (r[dl[$1]] < r[$3]) print $2, df[$1], $1
        else if (dl[$1] == "core" && $1 ~ /^rudp__/) print $2, df[$1], $1 # core-internal
    }' "$tmp/defs" "$tmp/uses" >>"$tmp/found"

if [ $found_only -eq 1 ]; then
    sort -u "$tmp/found"
    exit 0
fi

# Against the list of known exceptions.
# (lines starting with # are comments; "#include" is only ever a third field)
grep -v '^[[:space:]]*#' "$ALLOW" 2>/dev/null | awk 'NF == 3 { print $1, $2, $3 }' | sort -u >"$tmp/allow" || true
sort -u "$tmp/found" >"$tmp/found.s"
comm -12 "$tmp/found.s" "$tmp/allow" >"$tmp/known"
comm -23 "$tmp/found.s" "$tmp/allow" >"$tmp/new"
comm -13 "$tmp/found.s" "$tmp/allow" >"$tmp/stale"

if [ -s "$tmp/known" ]; then
    echo "known, to be removed ($(wc -l <"$tmp/known") in tests/layers.allow):"
    awk '$3 == "#include" { printf "  include  %s -> %s\n", $1, $2; next }
         { printf "  call     %s -> %s: %s\n", $1, $2, $3 }' "$tmp/known"
fi
if [ -s "$tmp/new" ]; then
    echo "LAYER VIOLATIONS (a lower layer reaching up, or another layer's private header):"
    touch "$tmp/via"
    awk -v via="$tmp/via" '
        BEGIN { while ((getline l < via) > 0) { split(l, a, " "); k = a[1] " " a[2]
                    sub(/^[^ ]+ [^ ]+ /, "", l); if (!(k in path)) path[k] = l } }
        $3 == "#include" { k = $1 " " $2
            if ((k in path) && path[k] != $2) printf "  include  %s -> %s (through %s)\n", $1, $2, path[k]
            else printf "  include  %s -> %s\n", $1, $2
            next }
        { printf "  call     %s -> %s: %s\n", $1, $2, $3 }' "$tmp/new"
    fail=1
fi
if [ -s "$tmp/stale" ]; then
    echo "GONE, take these lines out of tests/layers.allow:"
    sed 's/^/  /' "$tmp/stale"
    fail=1
fi

# (c) per layer, the layers it uses (by symbol), down and, where still
# known exceptions, up.
echo "layers, highest first (by the symbols their objects use):"
for l in $LAYERS; do
    [ "$l" = core ] && continue
    down='' up=''
    for m in $LAYERS; do
        [ "$m" = "$l" ] && continue
        grep -qx "$l $m" "$tmp/edges" 2>/dev/null || continue
        if [ "$(rank "$m")" -gt "$(rank "$l")" ]; then down="$down $m"; else up="$up $m"; fi
    done
    printf '  %-10s uses%s' "$l" "${down:- nothing}"
    [ -n "$up" ] && printf '   (and, to be removed:%s)' "$up"
    echo
done

# (d) the front end (shim/state/state.h): where the application's sockets
# live is an interface with implementations, not a mode. No shim file asks
# which front end is in use (the old flag and variable, or a comparison
# with one of them outside the front ends' own files); no object but those
# binding libc's own calls (and the crypto backend's dlopen of libcrypto)
# calls the dynamic loader, and none with RTLD_DEFAULT (the program's or a
# tool's symbols); only the remote implementation, its exported
# registration and the headers that declare it name the remote one; the
# tool includes nothing of the shim but state/front.h.
FRONT_REMOTE_FILES="state/front.h state/state.h state/front_remote.c interpose/front.c"
FRONT_OWN_FILES="state/front.c state/front_remote.c state/front_mem.c state/fdtab.c"
DL_OBJECTS="base/real.o interpose/exec.o interpose/spawn.o base/aead_openssl.o"
for f in shim/*/*.c shim/*/*.h; do
    [ -e "$f" ] || continue
    rel=${f#shim/}
    grep -n 'shim_cfg\.supervisor\|shim_fd_by_file\|RUDP_SUPERVISOR\|RTLD_DEFAULT' "$f" |
        sed "s|^|FRONT MODE TESTED OR TOOL LOADED: $rel:|"
    case " $FRONT_OWN_FILES " in *" $rel "*) ;; *)
        grep -n 'shim_front()[[:space:]]*[!=]=\|[!=]=[[:space:]]*&shim_front_\|shim_front()->name' "$f" |
            sed "s|^|FRONT MODE TESTED: $rel:|" ;;
    esac
    case " $FRONT_REMOTE_FILES " in *" $rel "*) continue ;; esac
    grep -n 'shim_front_remote\|front_remote\.c' "$f" | sed "s|^|REMOTE FRONT NAMED OUTSIDE ITS IMPLEMENTATION: $rel:|"
done >"$tmp/front"
# every object of shim/ whose source is there (stale ones skipped)
set --
for o in "$BUILD"/shim/*/*.o; do
    [ -e "$o" ] || continue
    rel=${o#"$BUILD"/shim/}
    [ -e "shim/${rel%.o}.c" ] && set -- "$@" "$o"
done
# nm -A's OBJ (nm_obj) -> its path under shim/, as "layer/file.o"
# shellcheck disable=SC2016 # awk code, not the shell's
nm_rel="$nm_obj"'{ rel = substr(o, length(pre) + 1) }'
if [ $# -gt 0 ]; then
    nm -A -u "$@" | awk -v pre="$BUILD/shim/" -v dl=" $DL_OBJECTS " "$nm_rel"'
        index(dl, " " rel " ") { next }
        $NF ~ /^(dlsym|dlvsym|dlopen|dlmopen)$/ {
            print "DYNAMIC LOADER CALLED: " rel ": " $NF " (only " "the objects binding libc'"'"'s calls may)" }'
fi >>"$tmp/front"
grep -n '#[[:space:]]*include[[:space:]]*"[./]*shim/' tools/supervise/*.c tools/supervise/*.h 2>/dev/null |
    grep -v 'shim/state/front\.h"' | sed 's|^|THE TOOL INCLUDES THE SHIM BEYOND state/front.h: |' >>"$tmp/front"
if [ -s "$tmp/front" ]; then
    cat "$tmp/front"
    fail=1
fi

# (e) names that say where they live: a global function of the shim whose
# prefix (shim_<word>_) is the name of another layer or of a module (file)
# of another layer, and of none of its own (shim_engine_* defined in base/
# once was), unless it is the layer's or the module's own name.
ls shim/*/*.c | sed 's|^shim/\([^/]*\)/\([^/]*\)\.c$|\1 \2|' >"$tmp/modules"
for l in $LAYERS; do echo "$l $l"; done >>"$tmp/modules"
if [ $# -gt 0 ]; then
    nm -A -g --defined-only "$@" | awk -v pre="$BUILD/shim/" "$nm_rel"'$2 == "T" {print rel, $3}'
fi | awk 'NR == FNR { own[$2] = own[$2] " " $1 " "; next }
    { split($1, a, "/"); layer = a[1]; s = $2
      if (s !~ /^shim_[a-z0-9]+_/) next
      split(s, p, "_"); m = p[2]
      if (!(m in own) || index(own[m], " " layer " ")) next
      print "NAME OF ANOTHER LAYER'"'"'S MODULE: " $1 ": " s " (" m " is in:" own[m] ")" }' \
    "$tmp/modules" - >"$tmp/names"
if [ -s "$tmp/names" ]; then
    cat "$tmp/names"
    fail=1
fi

# core/'s own layering (helper "core" of issue 31): its check, when present.
if [ -x tests/check_core_layers.sh ]; then
    tests/check_core_layers.sh "$BUILD" || fail=1
fi

if [ $fail -ne 0 ]; then
    echo "make layers: FAILED"
    exit 1
fi
echo "make layers: OK ($(wc -l <"$tmp/known") known exceptions left)"
