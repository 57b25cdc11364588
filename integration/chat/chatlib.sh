# Helpers for integration/tests/chat/t_chat_*.sh, sourced after integration/lib/lib.sh.
#
#   chat_start NAME CMD...    start_bg, under the shim when RUDP_CHAT_SHIM=1 (or
#                             RUDP_CHAT_KEYED=1: under the shim, every program
#                             with one new key in RUDP_KEY_FILE)
#   chatd_start ARGS...       chatd on a free port; waits for its readiness
#                             line; sets CHAT_PORT and CHATD_PID; keyed, checks
#                             that a client without the key gets no connection
#   wait_log FILE ERE SECS    wait until a line of FILE matches ERE
#   wait_lines FILE ERE N SECS   wait until N lines of FILE match ERE
#   alive PID                 true while PID runs (a zombie counts as dead)
#   wait_gone SECS PID...     wait until every PID has exited
#   chat_check MODE ARGS...   run chatcheck.py
#
# Nothing listens on TCP under the shim (it speaks UDP), so readiness is
# chatd's own "chatd: listening on ADDR:PORT" line, never a port probe.

CHAT_DIR=$ROOT/integration/chat
for p in chatd chatload; do
    [ -x "$BIN/$p" ] || fail "$BIN/$p not built (make progs)"
done

# Under the shim the preload environment comes from under_shim itself (the
# values it sets, read back by running printenv under it); the program is
# then started by env directly.  `start_bg NAME under_shim CMD` would make CMD
# a grandchild of this script (the backgrounded function is a subshell), out
# of reach of lib.sh's cleanup and of our kill -TERM by PID.
if [ "${RUDP_CHAT_KEYED:-0}" = 1 ]; then
    RUDP_CHAT_SHIM=1
    make_key "$T/chat.key"
    export RUDP_KEY_FILE="$T/chat.key"
fi
if [ "${RUDP_CHAT_SHIM:-0}" = 1 ]; then
    CHAT_LDP=$(under_shim printenv LD_PRELOAD)
    CHAT_ASO=$(under_shim printenv ASAN_OPTIONS)
    CHAT_MODE="under the shim ($CHAT_LDP)${RUDP_KEY_FILE:+, keyed}"
    chat_start() {
        _n=$1; shift
        start_bg "$_n" env "LD_PRELOAD=$CHAT_LDP" "ASAN_OPTIONS=$CHAT_ASO" "$@"
    }
else
    CHAT_MODE="over kernel TCP"
    chat_start() {
        _n=$1; shift
        start_bg "$_n" "$@"
    }
fi
echo "chat: $(basename "$0") $CHAT_MODE"

wait_lines() {
    _f=$1 _re=$2 _want=$3 _secs=$4 _i=0
    while [ "$_i" -lt $((_secs * 20)) ]; do
        if [ -f "$_f" ] && [ "$(grep -cE -a -- "$_re" "$_f" || true)" -ge "$_want" ]; then
            return 0
        fi
        sleep 0.05
        _i=$((_i + 1))
    done
    return 1
}

wait_log() { wait_lines "$1" "$2" 1 "$3"; }

alive() {
    { read -r _pid _comm _st _rest <"/proc/$1/stat"; } 2>/dev/null || return 1
    [ "$_st" != Z ]
}

wait_gone() {
    _secs=$1; shift
    _i=0
    while [ "$_i" -lt $((_secs * 20)) ]; do
        _any=0
        for _p in "$@"; do
            if alive "$_p"; then _any=1; break; fi
        done
        [ "$_any" = 0 ] && return 0
        sleep 0.05
        _i=$((_i + 1))
    done
    return 1
}

chatd_start() {
    CHAT_PORT=$(free_port)
    chat_start chatd "$BIN/chatd" -p "$CHAT_PORT" "$@"
    CHATD_PID=$LAST_PID
    wait_log "$T/chatd.log" '^chatd: listening on ' 10 ||
        fail "chatd not ready after 10 s: $(cat "$T/chatd.log")"
    [ "${RUDP_CHAT_KEYED:-0}" = 1 ] || return 0
    # The clients' success then says they hold the key too.
    _rc=0
    timeout 30 env -u RUDP_KEY_FILE "LD_PRELOAD=$CHAT_LDP" "ASAN_OPTIONS=$CHAT_ASO" \
        RUDP_CONNECT_TIMEOUT=2s nc -z 127.0.0.1 "$CHAT_PORT" 2>"$T/nokey.log" || _rc=$?
    [ "$_rc" != 0 ] || fail "the keyed chatd let a client without the key connect"
    echo "chat: a client without the key gets no connection to the keyed chatd"
}

# The checker's findings are kept and shown again after chat_dump, so
# they end a failing test's output (run.sh shows its last lines).
chat_check() {
    _rc=0
    python3 "$CHAT_DIR/chatcheck.py" "$@" >"$T/chatcheck.out" 2>&1 || _rc=$?
    cat "$T/chatcheck.out"
    return $_rc
}

# On failure, show where things stood.
chat_dump() {
    echo "--- chatd.log" >&2
    tail -20 "$T/chatd.log" >&2 || true
    for _f in "$@"; do
        echo "--- $_f (tail)" >&2
        tail -5 "$_f" | cut -c1-200 >&2 || true
    done
    if [ -s "$T/chatcheck.out" ]; then
        echo "--- the checker said" >&2
        tail -15 "$T/chatcheck.out" >&2
    fi
}
