/* rudp-supervise --probe: can the supervisor work here? Every kernel
 * mechanism stage 2 relies on, tried for real on a child of this process
 * (supervise.h). rudp-run asks before choosing the supervisor. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervise.h"

/* What the child's accept4 must see written back: proof that
 * process_vm_writev reached it. */
#define PROBE_LEN 7
/* The child's exit status when seccomp() failed: this + its errno. */
#define PROBE_ERRNO 100

/* The child: the filter, its listener to the parent, then one reported
 * call (accept4 on its end of the socketpair), answered by the parent
 * with a new fd (SECCOMP_ADDFD_FLAG_SEND) and a length written into it.
 * Exits 0 when both arrived; PROBE_ERRNO + errno when seccomp() failed. */
static void probe_child(int sock)
{
    int lfd = install_filter();
    if (lfd < 0)
        _exit(PROBE_ERRNO + (errno > 0 && errno < 256 - PROBE_ERRNO ? errno : 0));
    if (send_fd(sock, lfd) < 0)
        _exit(1);
    close(lfd);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int nfd = accept4(sock, (struct sockaddr *)&ss, &len, 0);
    _exit(nfd >= 0 && nfd != sock && fcntl(nfd, F_GETFD) >= 0 && len == PROBE_LEN ? 0 : 1);
}

/* The reason for errno e from step what, into why. */
static void because(char *why, size_t len, const char *what, int e)
{
    const char *hint = "";
    if (!strcmp(what, "seccomp")) {
        hint = e == EBUSY    ? " (already under a seccomp user-notification listener: another supervisor)"
               : e == EINVAL ? " (a kernel before 5.0, without seccomp user notification)"
               : e == ENOSYS ? " (a kernel without seccomp)"
               : e == EACCES || e == EPERM ? " (refused: a container's seccomp policy?)"
                                           : "";
    } else if (!strcmp(what, "pidfd_open")) {
        hint = e == ENOSYS ? " (a kernel before 5.3)" : "";
    } else if (!strcmp(what, "pidfd_getfd")) {
        hint = e == ENOSYS ? " (a kernel before 5.6)"
               : e == EPERM ? " (ptrace access refused: kernel.yama.ptrace_scope or a container's policy)"
                            : "";
    } else if (!strcmp(what, "SECCOMP_IOCTL_NOTIF_ADDFD")) {
        hint = e == EINVAL || e == ENOTTY ? " (a kernel before 5.14, without SECCOMP_ADDFD_FLAG_SEND)" : "";
    } else if (!strcmp(what, "process_vm_writev")) {
        hint = e == EPERM ? " (ptrace access refused: kernel.yama.ptrace_scope or a container's policy)"
               : e == ENOSYS ? " (a kernel without CONFIG_CROSS_MEMORY_ATTACH)"
                             : "";
    }
    snprintf(why, len, "%s: %s%s", what, strerror(e), hint);
}

int probe(char *why, size_t len)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        because(why, len, "socketpair", errno);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        because(why, len, "fork", errno);
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        probe_child(sv[1]);
    }
    close(sv[1]);
    int lfd = -1, pidfd = -1, copy = -1, ok = -1;
    struct seccomp_notif_sizes sizes;
    struct seccomp_notif *req = NULL;
    struct seccomp_notif_resp *resp = NULL;
    /* Its listener; none when its seccomp() failed (its exit status says
     * how, below) */
    if ((lfd = recv_fd(sv[0])) < 0) {
        snprintf(why, len, "the probe's child sent no listener");
        goto out;
    }
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) {
        because(why, len, "SECCOMP_GET_NOTIF_SIZES", errno);
        goto out;
    }
    req = calloc(1, sizes.seccomp_notif);
    resp = calloc(1, sizes.seccomp_notif_resp);
    if (!req || !resp) {
        because(why, len, "calloc", ENOMEM);
        goto out;
    }
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
        because(why, len, "SECCOMP_IOCTL_NOTIF_RECV", errno);
        goto out;
    }
    pidfd = pidfd_for((pid_t)req->pid); /* as stage 2 takes it, before 6.9 too */
    if (pidfd < 0) {
        because(why, len, "pidfd_open", errno);
        goto out;
    }
    copy = (int)syscall(SYS_pidfd_getfd, pidfd, (int)req->data.args[0], 0);
    if (copy < 0) {
        because(why, len, "pidfd_getfd", errno);
        goto out;
    }
    socklen_t plen = PROBE_LEN;
    struct iovec l1 = {.iov_base = &plen, .iov_len = sizeof plen};
    struct iovec r1 = {.iov_base = (void *)(uintptr_t)req->data.args[2], .iov_len = sizeof plen};
    if (process_vm_writev(req->pid, &l1, 1, &r1, 1, 0) != sizeof plen) {
        because(why, len, "process_vm_writev", errno);
        goto out;
    }
    struct seccomp_notif_addfd add = {.id = req->id, .flags = SECCOMP_ADDFD_FLAG_SEND,
                                      .srcfd = (uint32_t)copy};
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &add) < 0) {
        because(why, len, "SECCOMP_IOCTL_NOTIF_ADDFD", errno);
        goto out;
    }
    ok = 0;
out:
    if (ok < 0 && req && resp && req->id && lfd >= 0) {
        resp->id = req->id; /* unblock the child's call: it then exits 1 */
        resp->error = -EPERM;
        ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    close(sv[0]);
    int st = 0;
    if (ok < 0 && lfd >= 0)
        kill(pid, SIGKILL); /* (without a listener it exits by itself) */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (lfd < 0 && WIFEXITED(st) && WEXITSTATUS(st) > PROBE_ERRNO)
        because(why, len, "seccomp", WEXITSTATUS(st) - PROBE_ERRNO);
    if (ok == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        snprintf(why, len, "the probe's child did not get the answer it was sent");
        ok = -1;
    }
    if (copy >= 0)
        close(copy);
    if (pidfd >= 0)
        close(pidfd);
    if (lfd >= 0)
        close(lfd);
    free(req);
    free(resp);
    return ok;
}
