#!/bin/sh
# The shim's static TLS (its PT_TLS segment's MemSiz) stays under a bound:
# glibc adds it to every thread of every program the shim is preloaded
# into, carved out of the stack the thread's creator asked for, so a thread
# made with a small stack fails to start (pthread_create: EINVAL) once it
# grows (MariaDB's 64 KiB timer thread did, at 96 KiB). Buffers go per
# engine or on the heap (shim_malloc), not in __thread/_Thread_local.
#   tests/check_tls.sh [SHIM.so [BOUND_BYTES]]
set -eu
so=${1:-build/librudp_shim.so}
bound=${2:-1024}
command -v readelf >/dev/null || { echo "FAIL: readelf (binutils) missing"; exit 1; }
[ -f "$so" ] || { echo "FAIL: no $so"; exit 1; }
hdr=$(readelf -lW "$so") || { echo "FAIL: readelf -lW $so"; exit 1; }
# "  TLS  Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align": MemSiz is field 6
mem=$(printf '%s\n' "$hdr" | awk '$1 == "TLS" { print $6 }')
if [ -z "$mem" ]; then
    echo "TLS OK: $so has no TLS segment (bound $bound bytes)"
    exit 0
fi
size=$(printf '%d' "$mem")
if [ "$size" -ge "$bound" ]; then
    echo "FAIL: $so carries $size bytes of static TLS (MemSiz $mem), bound $bound:"
    echo "  every thread of a program under the shim pays it from its stack;"
    echo "  move thread-local buffers to the engine or the heap. Its TLS symbols:"
    readelf -sW "$so" | awk '$4 == "TLS" { print "    " $3 " bytes  " $8 }'
    exit 1
fi
echo "TLS OK: $so carries $size bytes of static TLS (bound $bound)"
