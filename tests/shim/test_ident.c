/*
 * ident: shim/state/ident.c, who may stand at the other end of a bridge.
 * Abstract unix names have no owner, so a connection to a listener's name
 * is taken only from the engine serving it, as the kernel's SO_PEERCRED
 * tells: this process, the listener's owner or its last listen()er, a
 * keeper entered in the owner's slab, or a maker that showed the
 * listener's secret; and only of root's, the listener's or our uid.
 * Connections made here by this process and by forked children.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(ident, .init = shimtest_setup);

/* A listening unix socket on an abstract name of its own; its address in
 * *un, *len. -1 if it cannot be made (no Criterion assertion: a forked
 * child calls it too). */
static int listener(struct sockaddr_un *un, socklen_t *len)
{
    static int n;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    int k = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "shimtest-ident-%d-%d",
                     (int)getpid(), n++);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k);
    if (l < 0 || bind(l, (struct sockaddr *)un, *len) < 0 || listen(l, 8) < 0)
        return -1;
    return l;
}

/* listener(), in a test's own process. */
static int listening(struct sockaddr_un *un, socklen_t *len)
{
    int l = listener(un, len);
    cr_assert(l >= 0, "a listener: %s", strerror(errno));
    return l;
}

static int connect_to(const struct sockaddr_un *un, socklen_t len)
{
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(c >= 0);
    cr_assert(connect(c, (const struct sockaddr *)un, len) == 0);
    return c;
}

/* A connection to un made by a forked child, which first enters itself as
 * a keeper of our slab (keeper 1) or becomes uid (not -1); accepted on l.
 * The child's pid into *child. */
static int accepted_from_child(int l, const struct sockaddr_un *un, socklen_t len, int keeper,
                               uid_t uid, pid_t *child)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (keeper)
            shim_slots_keeper();
        if (uid != (uid_t)-1 && setuid(uid) != 0)
            _exit(2);
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        _exit(c >= 0 && connect(c, (const struct sockaddr *)un, len) == 0 ? 0 : 1);
    }
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    cr_assert(eq(int, WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0), "the child connected");
    *child = pid;
    int n = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    cr_assert(n >= 0);
    return n;
}

Test(ident, the_listener_credentials_are_its_last_listen)
{
    struct sockaddr_un un;
    socklen_t len;
    int l = listening(&un, &len);
    pid_t pid;
    uid_t uid;
    cr_assert(eq(int, shim_ident_listener_cred(l, &pid, &uid), 0));
    cr_assert(eq(int, pid, getpid()));
    cr_assert(eq(u32, uid, geteuid()));
    int unbound = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(eq(int, shim_ident_listener_cred(unbound, &pid, &uid), -1));
}

Test(ident, our_own_connection_is_accepted)
{
    struct sockaddr_un un;
    socklen_t len;
    int l = listening(&un, &len);
    connect_to(&un, len);
    int n = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    cr_assert(eq(int, shim_ident_accepted(l, n, getpid() + 1, 0), 1));
    cr_assert(eq(u64, shim_ident_refused(), 0));
    /* told without the listener's name (accept's usual case) */
    cr_assert(eq(int, shim_ident_accepted_here(n, 0), 1));
    cr_assert(eq(int, shim_ident_accepted_here(n, 1), 1));
    /* but not when a proof was promised and not shown */
    cr_assert(eq(int, shim_ident_accepted_here(n, -1), 0));
    cr_assert(eq(int, shim_ident_accepted(l, n, getpid(), -1), 0));
    cr_assert(eq(u64, shim_ident_refused(), 1));
}

Test(ident, another_process_is_refused_unless_our_keeper_or_proven)
{
    struct sockaddr_un un;
    socklen_t len;
    int l = listening(&un, &len);
    cr_assert(shim_slot_alloc(1) != UINT32_MAX); /* our slab, for keepers to enter */
    pid_t child, owner = getpid();
    int n = accepted_from_child(l, &un, len, 0, (uid_t)-1, &child);
    cr_assert(eq(int, shim_ident_accepted_here(n, 0), 0), "not this process: ask further");
    cr_assert(eq(u64, shim_ident_refused(), 0), "the quick check counts nothing");
    cr_assert(eq(int, shim_ident_accepted(l, n, owner, 0), 0), "a stranger's pid");
    cr_assert(eq(u64, shim_ident_refused(), 1));
    cr_assert(strstr(shimtest_log(), "refused a connection to a listener from pid") != NULL);
    cr_assert(eq(int, shim_ident_accepted(l, n, child, 0), 1), "the listener's owner");
    cr_assert(eq(int, shim_ident_accepted(l, n, owner, 1), 1), "it showed the secret");
    cr_assert(eq(int, shim_ident_may_prove(l, n), 1), "our uid: worth waiting for");
    int k = accepted_from_child(l, &un, len, 1, (uid_t)-1, &child);
    cr_assert(eq(int, shim_ident_accepted(l, k, owner, 0), 1), "a keeper of our slab");
    cr_assert(eq(int, shim_ident_accepted(l, k, owner + 1, 0), 0), "of another owner's");
}

Test(ident, another_uid_is_refused_even_with_a_proof)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to connect as another uid");
    struct passwd *nobody = getpwnam("nobody");
    uid_t uid = nobody ? nobody->pw_uid : 65534;
    struct sockaddr_un un;
    socklen_t len;
    int l = listening(&un, &len);
    pid_t child;
    int n = accepted_from_child(l, &un, len, 0, uid, &child);
    cr_assert(eq(int, shim_ident_accepted_here(n, 1), 0), "another uid, even with a proof");
    cr_assert(eq(int, shim_ident_accepted(l, n, child, 0), 0), "a pid reused by another user");
    cr_assert(eq(int, shim_ident_accepted(l, n, getpid(), 1), 0));
    cr_assert(eq(int, shim_ident_may_prove(l, n), 0));
    cr_assert(eq(u64, shim_ident_refused(), 2));
}

Test(ident, the_engine_checks_the_listener_it_reached)
{
    struct sockaddr_un un;
    socklen_t len;
    listening(&un, &len); /* open for the test: the listener the engine reaches */
    int e = connect_to(&un, len);
    cr_assert(eq(int, shim_ident_listener(e, getpid() + 1, (uid_t)-1), 1), "ours");
    /* a listener another process made (a squatter's, of our uid) */
    int pfd[2];
    cr_assert(pipe(pfd) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        struct sockaddr_un cun;
        socklen_t clen;
        close(pfd[0]);
        if (listener(&cun, &clen) < 0)
            _exit(1);
        (void)!write(pfd[1], &cun, sizeof cun);
        (void)!write(pfd[1], &clen, sizeof clen);
        pause(); /* until the parent is done */
        _exit(0);
    }
    close(pfd[1]);
    struct sockaddr_un cun;
    socklen_t clen;
    cr_assert(read(pfd[0], &cun, sizeof cun) == (ssize_t)sizeof cun);
    cr_assert(read(pfd[0], &clen, sizeof clen) == (ssize_t)sizeof clen);
    int e2 = connect_to(&cun, clen);
    cr_assert(eq(int, shim_ident_listener(e2, getpid(), (uid_t)-1), 0), "not our application's");
    cr_assert(eq(int, shim_ident_listener(e2, pid, (uid_t)-1), 1), "its name's owner");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(ident, an_inherited_bridge_peer_of_ours_passes)
{
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    cr_assert(eq(int, shim_ident_inherited(sv[0]), 1));
    int unconnected = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(eq(int, shim_ident_inherited(unconnected), 0));
}
