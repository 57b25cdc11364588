/*
 * stdio.c: fdopen(), for the records' proofs (state/fdtab.c).
 *
 * A lookup takes a record proved in the current epoch without asking the
 * kernel which file the number names. A stream on one of our sockets is
 * closed by fclose() (or freopen()) inside libc, where no
 * close() of ours sees it, and the number may then be opened again as
 * another file: the record of a number stdio has is proved by its inode
 * at every lookup, as every record was before the epoch
 * (tests/prog_fdreuse.c). Numbers 0-2 are proved always (fdtab.c), so a
 * stdin/stdout of ours needs nothing here.
 */
#include <stdio.h>

#include "interpose.h"
#include "base/poison.h"

SHIM_EXPORT FILE *fdopen(int fd, const char *mode)
{
    shim_init(); /* binds real_fdopen (a constructor's stdio may come first) */
    /* before the stream exists: no fclose() of it can come first */
    shim_fd_prove_always(fd);
    return real_fdopen(fd, mode);
}

/* glibc's other name for it (one function) */
FILE *_IO_fdopen(int fd, const char *mode);

SHIM_EXPORT FILE *_IO_fdopen(int fd, const char *mode)
{
    return fdopen(fd, mode);
}
