/*
 * shimtest.h: what every test of shim code (tests/shim/test_*.c) starts
 * from. These tests call the shim's modules directly, linked with the
 * shim's objects but interpose/'s (Makefile, "unit tests of shim code"):
 * no LD_PRELOAD, and the program's own socket() and close() are libc's.
 *
 * Criterion runs each test in a process of its own, so a module's static
 * state (the slots' slab, the fd records, the epoll notes, the
 * configuration) is fresh in every test and needs no reset between them
 * (and --no-fork, which runs them all in one process, is not for these);
 * what a test must not inherit from the environment it is run in is
 * cleared by shimtest_setup.
 */
#ifndef SHIMTEST_H
#define SHIMTEST_H

#include <stddef.h>

#include "state/state.h"

/*
 * A known state, the .init of every suite: libc's real entry points bound
 * (base/real.c, as the library's constructor would), this process the
 * owner of the records (procenv.c), every RUDP_* variable of the
 * environment removed, and the configuration loaded from defaults with
 * its log going to a memory file that shimtest_log() reads back, so that
 * what the shim says is part of what a test can assert.
 */
void shimtest_setup(void);

/* What the shim logged since shimtest_setup (or the last call), as one
 * NUL-terminated string, valid until the next call. */
const char *shimtest_log(void);

/* What a failed shim_config_load said (shim_config_tell), without its
 * newline, as shimtest_log's string is kept. */
const char *shimtest_config_said(void);

/* A fresh socket, pipe end or other file whose number the caller gives
 * (dup3 over it if taken): the number stays, the file and its inode
 * change, as when a program reuses an fd behind the shim's back. Returns
 * fd, or -1. */
int shimtest_new_file_at(int fd);

/* lib_clock.c: the shim's clock (shim_now) in these tests. Real until
 * set; then it says t, moved only by shimtest_clock_advance. */
void shimtest_clock_set(rudp_time t);
void shimtest_clock_advance(rudp_time d);

#endif
