# B1-B4, B9-B11: bulk goodput at the receiver (bulk.c, a -> b) over the
# emulated links SPEC_B1.. (B11: a veth pair), every transport in turn on
# one link per run. Sourced by run.sh after its helpers (emu_up, bulk,
# rotate, run_trs, trs, want...); POSIX sh.

for sc in B1 B2 B3 B4 B9 B10 B11; do
    want "$sc" || continue
    eval "spec=\$SPEC_$sc"
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
