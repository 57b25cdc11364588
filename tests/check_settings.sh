#!/bin/sh
# The settings (RUDP_* variables) have one list: known_vars in the shim's
# config.c, the table the shim itself checks every name it reads against
# (an unknown RUDP_* name draws a warning from it). Their description is
# librudp_shim(7)'s ENVIRONMENT; rudp-run(1) and rudp-run --help give each
# one's option. This check fails, naming the setting (or option), when
#   - config.c parses a RUDP_* name that is not a SETTING of the table, or a
#     SETTING that it never parses;
#   - librudp_shim(7)'s ENVIRONMENT lacks an entry (.TP/.B NAME) for a
#     setting, or has one for a name that is not a setting;
#   - rudp-run(1)'s ENVIRONMENT list or rudp-run --help lacks a setting;
#   - a page or --help names a RUDP_* variable that nothing reads;
#   - README.md or docs/*.md names one (see 6.);
#   - rudp-run, its --help and rudp-run(1) disagree on the options or on
#     the variable an option sets, or an option sets a name that is not a
#     setting (RUDP_SHIM, rudp-run's own, apart).
#
#   tests/check_settings.sh [RUDP_RUN]   (default tools/rudp-run; make
#                                         check-settings gives build/bin/rudp-run)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-$root/tools/rudp-run}
script=$root/tools/rudp-run
man7=$root/man/librudp_shim.7
man1=$root/man/rudp-run.1
# Found by its table, wherever the shim's layers put it (a .c or a .h).
cfg=$(grep -rl --include='*.[ch]' 'known_vars\[\] *=' "$root/shim" | head -1)
[ -n "$cfg" ] || { echo "check_settings: no known_vars table under $root/shim" >&2; exit 1; }
rel=${cfg#"$root"/}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
err() { echo "check_settings: $*" >&2; bad=1; }
names() { grep -oE 'RUDP_[A-Z0-9][A-Z0-9_]*' | sort -u; }
# in_a_not_b A B: the names of file A that file B lacks.
in_a_not_b() { comm -23 "$1" "$2"; }
# each A B MESSAGE: an error for each name of file A that file B lacks,
# NAME in MESSAGE replaced by it.
each() {
    for _v in $(in_a_not_b "$1" "$2"); do err "$(echo "$3" | sed "s/NAME/$_v/g")"; done
}

rows() { grep -oE '\{"RUDP_[A-Z0-9_]+", *'"$1"'\}' "$cfg" | grep -oE 'RUDP_[A-Z0-9_]+' | sort -u; }
rows SETTING >"$tmp/settings"
rows SCRIPT >"$tmp/scripts"
sort -u "$tmp/settings" "$tmp/scripts" >"$tmp/known"
n=$(wc -l <"$tmp/settings")
[ "$n" -ge 16 ] || { echo "check_settings: only $n SETTING rows read from $rel" >&2; exit 1; }

# 1. What the shim parses: the quoted names in config.c outside the table
# are settings, and every setting is parsed there; a quoted name elsewhere
# in the shim is in the table.
grep -vE '\{"RUDP_[A-Z0-9_]+", *(SETTING|SCRIPT)\}' "$cfg" | grep -oE '"RUDP_[A-Z0-9][A-Z0-9_]*"' | tr -d '"' |
    sort -u >"$tmp/parsed"
each "$tmp/parsed" "$tmp/settings" \
    "$rel parses NAME, which is not a SETTING row of its known_vars"
each "$tmp/settings" "$tmp/parsed" \
    "NAME is a SETTING of $rel's known_vars that $rel never parses"
grep -rhoE --include='*.[ch]' '"RUDP_[A-Z0-9][A-Z0-9_]*"' "$root/shim" | tr -d '"' | sort -u >"$tmp/shimnames"
each "$tmp/shimnames" "$tmp/known" \
    "the shim names NAME, which is not in $rel's known_vars"

# 2. librudp_shim(7): one entry per setting in ENVIRONMENT, a name that
# follows .TP; and no unknown name anywhere in the page.
awk '/^\.SH /{in_env = ($0 ~ /^\.SH "?ENVIRONMENT/)} in_env' "$man7" >"$tmp/env7"
awk 'tp && /^\.B /{print $2} {tp = ($0 ~ /^\.TP/)}' "$tmp/env7" | names >"$tmp/entries7"
each "$tmp/settings" "$tmp/entries7" \
    "man/librudp_shim.7 ENVIRONMENT has no entry (.TP, .B NAME) for the setting NAME"
each "$tmp/entries7" "$tmp/settings" \
    "man/librudp_shim.7 ENVIRONMENT describes NAME, which is not a setting ($rel)"
names <"$man7" >"$tmp/names7"
each "$tmp/names7" "$tmp/known" \
    "man/librudp_shim.7 names NAME, which nothing reads (not in $rel's known_vars)"

# 3. rudp-run(1): its ENVIRONMENT lists every setting; no unknown name.
awk '/^\.SH /{in_env = ($0 ~ /^\.SH "?ENVIRONMENT/)} in_env' "$man1" | names >"$tmp/env1"
each "$tmp/settings" "$tmp/env1" \
    "man/rudp-run.1 ENVIRONMENT does not list the setting NAME"
names <"$man1" >"$tmp/names1"
each "$tmp/names1" "$tmp/known" \
    "man/rudp-run.1 names NAME, which nothing reads (not in $rel's known_vars)"

# 4. rudp-run --help: every setting; no unknown name.
"$run" --help >"$tmp/help" 2>&1 || { err "$run --help failed: $(head -3 "$tmp/help")"; exit 1; }
names <"$tmp/help" >"$tmp/helpnames"
each "$tmp/settings" "$tmp/helpnames" \
    "rudp-run --help does not name the setting NAME"
each "$tmp/helpnames" "$tmp/known" \
    "rudp-run --help names NAME, which nothing reads (not in $rel's known_vars)"

# 5. The options: "--option VAR" as the script sets it, as --help and as
# rudp-run(1) say (the first [VAR] of each option's text).
sed -n 's/^ *\(-[a-z]|\)\{0,1\}--\([a-z-]*\)).*[ ;]\(RUDP_[A-Z0-9_]*\)=.*/--\2 \3/p' "$script" |
    sort -u >"$tmp/opt.script"
awk '/^ *(-[a-z], )?--[a-z]/ { if (o != "") print o, v; o = ""; v = ""
                               for (i = 1; i <= NF; i++) if ($i ~ /^--[a-z]/) { o = $i; break } }
     o != "" && v == "" && match($0, /\[RUDP_[A-Z0-9_]*/) { v = substr($0, RSTART + 1, RLENGTH - 1) }
     END { if (o != "") print o, v }' "$tmp/help" | awk 'NF == 2' | sort -u >"$tmp/opt.help"
awk '/^\.SH /{in_opt = ($0 ~ /^\.SH "?OPTIONS/)} in_opt' "$man1" |
    awk 'tp { if (o != "") print o, v; o = ""; v = ""
              if (match($0, /\\-\\-[a-z\\-]*[a-z]/)) { o = substr($0, RSTART, RLENGTH); gsub(/\\/, "", o) } }
         { tp = ($0 ~ /^\.TP/) }
         !tp && o != "" && v == "" && match($0, /^\.RB \[ RUDP_[A-Z0-9_]*/) { v = substr($0, RSTART + 6, RLENGTH - 6) }
         END { if (o != "") print o, v }' | awk 'NF == 2' | sort -u >"$tmp/opt.man1"
[ "$(wc -l <"$tmp/opt.script")" -ge 16 ] ||
    { err "read only $(wc -l <"$tmp/opt.script") options that set a variable from tools/rudp-run"; }
for f in help man1; do
    case $f in help) what="rudp-run --help" ;; man1) what="man/rudp-run.1" ;; esac
    in_a_not_b "$tmp/opt.script" "$tmp/opt.$f" | while read -r o v; do
        echo "check_settings: tools/rudp-run's $o sets $v; $what does not say so$(
            sed -n "s/^$o \(.*\)/ (it says \1)/p" "$tmp/opt.$f")" >&2
    done
    [ -z "$(in_a_not_b "$tmp/opt.script" "$tmp/opt.$f")" ] || bad=1
    in_a_not_b "$tmp/opt.$f" "$tmp/opt.script" | while read -r o v; do
        grep -q "^$o " "$tmp/opt.script" ||
            echo "check_settings: $what has $o [$v], an option tools/rudp-run does not take" >&2
    done
    [ -z "$(in_a_not_b "$tmp/opt.$f" "$tmp/opt.script")" ] || bad=1
done
while read -r o v; do
    [ "$v" = RUDP_SHIM ] || grep -qx "$v" "$tmp/settings" ||
        err "tools/rudp-run's $o sets $v, which is not a setting ($rel)"
done <"$tmp/opt.script"

# 6. README.md and docs/: every RUDP_* name they give is read (a setting,
# or one of the table's other names), so no page describes a setting that
# is gone. core/rudp.h's own names (RUDP_EV_WRITABLE...) are the library's
# constants, not settings, and may be named too.
names <"$root/core/rudp.h" | sort -u "$tmp/known" - >"$tmp/knowndoc"
for doc in "$root/README.md" "$root"/docs/*.md; do
    [ -f "$doc" ] || continue
    names <"$doc" >"$tmp/docnames"
    each "$tmp/docnames" "$tmp/knowndoc" \
        "${doc#"$root/"} names NAME, which nothing reads (not in $rel's known_vars)"
done

[ "$bad" = 0 ] || exit 1
echo "settings OK: the $n of $rel, in man/librudp_shim.7, man/rudp-run.1 and rudp-run --help, README and docs/ name no other;" \
     "$(wc -l <"$tmp/opt.script") options agree"
