#!/bin/sh
# A writer that dies of SIGPIPE, SIGUSR1, SIGALRM or SIGABRT left at their
# default action (tests/prog_sigdeath.c): its peer reads every byte its
# write() accepted, then EOF; waitpid() says the signal (and abort()'s core
# flag is the kernel's); dispositions and sigwait() as the program left
# them. Over kernel TCP, then under the shim (a keeper carries the engine
# past the signal).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_sigdeath
run_both sigdeath "$BIN/prog_sigdeath"
