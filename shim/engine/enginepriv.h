/*
 * enginepriv.h: what engine.c (the sockets and the loop), enginecmd.c (the
 * commands, run on the engine's thread) and enginestart.c (the core's
 * context and an engine's start) share. Internal to those three files; the
 * rest of engine/ has internal.h, the layers above engine.h.
 */
#ifndef SHIM_ENGINEPRIV_H
#define SHIM_ENGINEPRIV_H

#include "internal.h"

/* Datagrams read per recvmmsg, and the room for each (GRO: up to 64 KiB). */
#define RX_BATCH 32
#define RX_SIZE 65536

/* How often a listener closed here (perhaps held by another process) and an
 * idle member of a listener's group are checked again. */
#define ALIVE_PERIOD RUDP_SEC(1)
/* A keeper's listener checks while the process that handed over exits */
#define HANDED_POLL RUDP_MS(5)

/* Whether the app's listener, the unix socket with this inode, still
 * exists in any process and was not shut down (shutdown(SHUT_RD) stops a
 * TCP listener: reconnect.c, shim_unlisten): 1 yes, 0 no, -1 cannot tell
 * (sock_diag unavailable). */
static inline int unix_alive(uint64_t ino)
{
    return shim_unix_diag_open(ino);
}

/* Closes UDP socket s now: what is queued for it leaves first; its
 * listener's reserve socket is closed or held through TIME_WAIT; s is
 * freed at the end of the engine's batch (shim_engine_bury). */
void shim_esock_close(esock *s);
/* e's eventfd readable: runs the commands queued for e (enginecmd.c). */
void shim_engine_run_commands(struct engine *e, rudp_time now);
/* Due at e->retry_at: listeners closed here but perhaps held elsewhere,
 * then the hand-offs that found the app's backlog full. Sets e->retry_at
 * afresh. */
void shim_engine_retry_pending(struct engine *e, rudp_time now);

#endif
