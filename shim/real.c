/*
 * real.c: libc's entry points for the names we interpose, bound once with
 * dlsym(RTLD_NEXT). pthread_once makes it safe from any thread and before
 * the constructor (a program may create sockets from its own constructors).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "shim.h"
#include "poison.h"

int (*real_socket)(int, int, int);
int (*real_bind)(int, const struct sockaddr *, socklen_t);
int (*real_listen)(int, int);
int (*real_accept)(int, struct sockaddr *, socklen_t *);
int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
int (*real_connect)(int, const struct sockaddr *, socklen_t);
int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
int (*real_getsockopt)(int, int, int, void *, socklen_t *);
int (*real_setsockopt)(int, int, int, const void *, socklen_t);
int (*real_shutdown)(int, int);
int (*real_close)(int);
int (*real_ioctl)(int, unsigned long, ...);
int (*real_epoll_ctl)(int, int, int, struct epoll_event *);
int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
sighandler_t (*real_signal)(int, sighandler_t);
ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
ssize_t (*real_recvmsg)(int, struct msghdr *, int);
int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
long (*real_syscall)(long, ...);

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *must(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        /* Without libc's own symbol nothing can work; say so and stop. */
        static const char msg[] = "librudp_shim: cannot find libc symbol\n";
        if (write(2, msg, sizeof msg - 1) < 0) {
            /* nothing more to do */
        }
        abort();
    }
    return p;
}

static void bind_all(void)
{
    /* dlsym returns void *; converting to function pointers is what POSIX
     * requires to work. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
    real_socket = (int (*)(int, int, int))must("socket");
    real_bind = (int (*)(int, const struct sockaddr *, socklen_t))must("bind");
    real_listen = (int (*)(int, int))must("listen");
    real_accept = (int (*)(int, struct sockaddr *, socklen_t *))must("accept");
    real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))must("accept4");
    real_connect = (int (*)(int, const struct sockaddr *, socklen_t))must("connect");
    real_getsockname = (int (*)(int, struct sockaddr *, socklen_t *))must("getsockname");
    real_getpeername = (int (*)(int, struct sockaddr *, socklen_t *))must("getpeername");
    real_getsockopt = (int (*)(int, int, int, void *, socklen_t *))must("getsockopt");
    real_setsockopt = (int (*)(int, int, int, const void *, socklen_t))must("setsockopt");
    real_shutdown = (int (*)(int, int))must("shutdown");
    real_close = (int (*)(int))must("close");
    real_ioctl = (int (*)(int, unsigned long, ...))must("ioctl");
    real_epoll_ctl = (int (*)(int, int, int, struct epoll_event *))must("epoll_ctl");
    real_sigaction =
        (int (*)(int, const struct sigaction *, struct sigaction *))must("sigaction");
    real_signal = (sighandler_t(*)(int, sighandler_t))must("signal");
    real_sendto = (ssize_t(*)(int, const void *, size_t, int, const struct sockaddr *,
                              socklen_t))must("sendto");
    real_sendmsg = (ssize_t(*)(int, const struct msghdr *, int))must("sendmsg");
    real_recvfrom =
        (ssize_t(*)(int, void *, size_t, int, struct sockaddr *, socklen_t *))must("recvfrom");
    real_recvmsg = (ssize_t(*)(int, struct msghdr *, int))must("recvmsg");
    real_sendmmsg = (int (*)(int, struct mmsghdr *, unsigned int, int))must("sendmmsg");
    real_recvmmsg =
        (int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *))must("recvmmsg");
    real_syscall = (long (*)(long, ...))must("syscall");
#pragma GCC diagnostic pop
}

void shim_real_init(void)
{
    pthread_once(&once, bind_all);
}
