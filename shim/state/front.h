/*
 * front.h: what a front end that keeps the application's sockets in
 * another process gives the shim, and the one call through which it does.
 * The only header of the shim that a program outside it includes
 * (tools/supervise/, rudp-supervise): plain C types, no layout of ours.
 *
 * A front end is where the application's file table is (state.h,
 * shim_front_ops). Under the preload it is this process's own; under
 * rudp-supervise it is the supervised program's, and the shim is called on
 * short-lived copies of the program's fds (pidfd_getfd). The supervisor,
 * which runs with the shim preloaded, says so by registering the two
 * things only it can do; the dependency runs from the tool to the library,
 * never back.
 */
#ifndef SHIM_FRONT_H
#define SHIM_FRONT_H

#include <stdint.h>

typedef struct shim_front_remote {
    /* A short-lived copy of the program's end of a bridge, the file of
     * inode ino, which the caller closes; -1: not reachable (the program
     * closed it). Through it the engine marks a peer's reset and gives
     * connect()'s send buffer back on the program's end. */
    int (*app_end)(uint64_t ino);
    /* The front end's own counters, printed with the engines' (RUDP_STATS,
     * rudp-stat) a line at a time through line(arg, text); may be NULL. */
    void (*stats)(void (*line)(void *arg, const char *text), void *arg);
} shim_front_remote;

/* Exported by librudp_shim.so (interpose/front.c): from here on the
 * application's sockets are another process's, reached through r (kept,
 * not copied). Called once, before the shim records any socket (the
 * supervisor calls it first thing in its serving stage): returns 0, or -1
 * with errno EBUSY if it was called before or a socket is on record
 * already (records of this process's own numbers, which stay). */
int shim_front_register(const shim_front_remote *r);

#endif
