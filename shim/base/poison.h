/*
 * poison.h: included last by every shim file except the interposers, so
 * that calling an interposed name (which would re-enter the shim) is a
 * compile error. Use real_close(), real_socket(), ... instead. The
 * interposers here are the files that define those names, and syscalls.c,
 * which passes syscall()'s numbers on to them; every other file includes
 * this one (the lifetime interposers exec.c, spawn.c and signals.c too).
 */
#ifndef SHIM_POISON_H
#define SHIM_POISON_H
#pragma GCC poison socket bind listen accept accept4 connect getsockname getpeername
#pragma GCC poison getsockopt setsockopt shutdown ioctl epoll_ctl fcntl fcntl64 dup2 dup3
#pragma GCC poison sendto sendmsg recvfrom recvmsg sendmmsg recvmmsg write send writev
#pragma GCC poison read readv recv poll ppoll epoll_wait epoll_pwait epoll_pwait2 select pselect
/* Memory comes from the shim's allocator (alloc.c): shim_malloc, ... */
#pragma GCC poison malloc calloc realloc free strerror
#endif
