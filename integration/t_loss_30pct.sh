#!/bin/sh
# t_loss_10pct.sh at 30 % random loss (plus 2 % reordering and 2 % duplication,
# both directions): the transfer completes and the sha256 is equal.
#
# 8 MB rather than 20 MB: at 30 % loss both ways the transfer is bound by probe
# timeouts (one in three probes or their acknowledgements is lost, so they back
# off), and with NewReno 20 MB took ~165 s on a 2 vCPU VM (5 MB: ~37 s). Run
# `LOSS_SIZE=20000000 LOSS_LIMIT=300 sh integration/t_loss_30pct.sh` for the
# full size.
LOSS_PCT=30
LOSS_SIZE=${LOSS_SIZE:-8000000}
LOSS_LIMIT=${LOSS_LIMIT:-150}
export LOSS_PCT LOSS_SIZE LOSS_LIMIT
exec sh "$(dirname "$0")/t_loss_10pct.sh"
