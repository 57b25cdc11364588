# B1-B4, B9-B11: bulk goodput at the receiver (bulk.c, a -> b) over the
# emulated links SPEC_B1.. (B11: a veth pair), every transport in turn on
# one link per run. Sourced by run.sh after its helpers (emu_up, bulk,
# rotate, run_trs, trs, want...); POSIX sh.

# The gigabit rows' links send every packet due within 50 us with the one
# that woke linkemu (--slack 50, default 5): bursts of up to ~4 packets at
# 1 Gbit/s, as a NIC's interrupt moderation delivers them (20,000
# interrupts/s is 50 us), the long-run rate exact, departures at most 50 us
# early. At the default linkemu woke for nearly every packet and its a->b
# thread, at SCHED_FIFO, took ~80 % of a core with kernel bbr on B10, most
# of it arming timers and switching (perf: schedule_hrtimeout_range_clock,
# finish_task_switch): CPU the endpoints' engines then lacked on a 2-core
# machine. 50 us took it to ~45 %, 230k wake-ups to 90k in 8 s, kernel
# bbr unchanged (922 and 926 Mbit/s). EMU_ARGS="--slack 5" restores the
# default (a later option wins).
EMU_ARGS0=${EMU_ARGS:-}
for sc in B1 B2 B3 B4 B9 B10 B11; do
    want "$sc" || continue
    eval "spec=\$SPEC_$sc"
    EMU_ARGS=$EMU_ARGS0
    case "$sc" in B9 | B10) EMU_ARGS="--slack 50 $EMU_ARGS0" ;; esac
    r=1
    while [ "$r" -le "$LAST" ]; do
        emu_up "bn$sc" "$spec" "$spec" "$r"
        port=5201
        for tr in $(rotate "$r" $(run_trs "$r" $(trs "$sc"))); do
            bulk "$sc" "$r" "$tr" "$port"
            port=$((port + 1))
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
done
EMU_ARGS=$EMU_ARGS0
