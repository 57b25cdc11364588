/*
 * front.c: shim_front_register (state/front.h), the one call of the shim
 * that is not a libc call it answers: rudp-supervise, which runs with the
 * shim preloaded, says through it that the application's sockets are
 * another process's (state.h: the remote front end). Exported, so the
 * dependency runs from the tool to the library.
 */
#include <errno.h>

#include "interpose.h"

#include "base/poison.h"

SHIM_EXPORT int shim_front_register(const shim_front_remote *r)
{
    int err = shim_front_remote_set(r);
    if (err < 0) {
        errno = -err;
        return -1;
    }
    return 0;
}
