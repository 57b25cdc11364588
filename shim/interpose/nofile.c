/*
 * nofile.c: the fd limit, widened while connect() makes its fds. Over TCP a
 * connect needs no new fd (the app's socket is the connection); ours needs
 * three (the UDP socket, the bridge's two ends, one of which replaces the
 * app's socket). An app that has every fd number its RLIMIT_NOFILE allows
 * in use got EMFILE where TCP connects. So on EMFILE the soft limit is
 * raised (up to the hard one) while connect() makes them, and set back: an
 * fd above the soft limit stays valid (the limit bounds only new numbers,
 * alloc_fd() in fs/file.c), and the app's own numbers are unchanged. Calls
 * overlapping in several threads raise it once and set it back once the
 * last is done; not if the limit changed meanwhile (the first engine's
 * start raises it, enginestart.c). Another thread of the app opening an fd meanwhile could
 * get a number above its limit: a window of a few system calls.
 */
#include <pthread.h>
#include <sys/resource.h>

#include "interpose.h"
#include "base/poison.h"

/* Numbers enough for connect's fds and, the first time, the engine's. */
#define NOFILE_EXTRA 64

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static int users;
static struct rlimit orig;
static rlim_t widened_to;

int shim_nofile_widen(void)
{
    int ok = 0;
    shim_mutex_lock(&mu);
    if (users > 0) {
        users++;
        ok = 1;
    } else if (getrlimit(RLIMIT_NOFILE, &orig) == 0 && orig.rlim_cur != RLIM_INFINITY &&
               orig.rlim_cur < orig.rlim_max) {
        struct rlimit w = orig;
        w.rlim_cur = orig.rlim_max - orig.rlim_cur > NOFILE_EXTRA ? orig.rlim_cur + NOFILE_EXTRA
                                                                   : orig.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &w) == 0) {
            widened_to = w.rlim_cur;
            users = 1;
            ok = 1;
        }
    }
    shim_mutex_unlock(&mu);
    return ok;
}

void shim_nofile_restore(void)
{
    shim_mutex_lock(&mu);
    struct rlimit now;
    /* Unless changed meanwhile: the first engine's start raises it for
     * good (enginestart.c), as the app may. */
    if (users > 0 && --users == 0 && getrlimit(RLIMIT_NOFILE, &now) == 0 &&
        now.rlim_cur == widened_to)
        setrlimit(RLIMIT_NOFILE, &orig);
    shim_mutex_unlock(&mu);
}
