/*
 * ident.c: who may stand at the other end of a bridge.
 *
 * The application's listener is an AF_UNIX socket bound to an abstract
 * name. Abstract names have no owner and no permissions: any process in the
 * network namespace can list them (ss -xl, sock_diag), connect to a
 * listening one, and bind any free name. The TCP addresses accept() and
 * getpeername() report are carried in the connecting socket's name, so a
 * connection that does not come from our own engine would let its maker
 * choose the address a server sees (defeating pg_hba, nginx allow/deny, any
 * allow-list), and a name squatted after a listener closed would receive
 * connections meant for it.
 *
 * The kernel tells us who made a unix connection: SO_PEERCRED gives the pid
 * and effective uid of the process that connected (on an accepted socket),
 * of the process that last called listen() (on a listening socket, and on a
 * socket connected to one), or of the process that made a socketpair. So:
 *
 *  - accept(): the connector must be the engine serving that listener: the
 *    process that last called listen() on it (the engine's owner; a keeper
 *    calls listen() again when it takes over, see engine.c), the owner
 *    named in the listener's name, or this very process (an engine of ours,
 *    possibly before an exec), or a keeper entered in the owner's slab
 *    (slots.c: a memfd only our processes hold; a keeper cannot call
 *    listen() on a listener it has no copy of, when the process that
 *    exited had closed its own and those still holding it were started
 *    by exec), or a connector that shows the listener's secret (names.c:
 *    a keeper's bridge to a listener that was passed to this process with
 *    SCM_RIGHTS, whose slab we never saw and which the keeper holds no
 *    copy of to listen() on). Its uid must be root, the listener's, or
 *    ours: a pid reused by another user after its owner died is no
 *    credential. Anything else is refused, counted, and never returned.
 *  - the engine, after connecting to a listener's name: the listening
 *    socket must be the one our application made (its listen() pid is this
 *    engine's process, the name's owner, or a child sharing this process's
 *    memory -- vfork(), clone(CLONE_VM), whose listeners our engines serve
 *    (adopt.c), as kcmp(KCMP_VM) tells --, and its uid root, the one
 *    recorded at listen() time, or ours), else the connection is reset.
 *  - a bridged fd the shim has no record of (inherited over exec): its peer
 *    must be this process or a process of our own uid or root. The kernel
 *    gives us nothing finer here; a process of the same uid can ptrace us
 *    anyway, so that is no weaker than kernel TCP.
 */
#include <errno.h>
#include <linux/kcmp.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "state.h"

#include "base/poison.h"

static _Atomic uint64_t refused;

static int peer_cred(int fd, struct ucred *c)
{
    socklen_t l = sizeof *c;
    if (real_getsockopt(fd, SOL_SOCKET, SO_PEERCRED, c, &l) < 0 || l != sizeof *c)
        return -1;
    return c->pid > 0 ? 0 : -1; /* pid 0: no peer (an unconnected socket) */
}

/* Root, our real or effective uid, or `also` ((uid_t)-1: none). */
static int uid_ok(uid_t u, uid_t also)
{
    return u == 0 || u == getuid() || u == geteuid() || (also != (uid_t)-1 && u == also);
}

int shim_ident_listener_cred(int lfd, pid_t *pid, uid_t *uid)
{
    struct ucred c;
    if (peer_cred(lfd, &c) < 0)
        return -1;
    *pid = c.pid;
    *uid = c.uid;
    return 0;
}

int shim_ident_accepted_here(int nfd, int proven)
{
    struct ucred c;
    return proven >= 0 && peer_cred(nfd, &c) == 0 &&
           (proven > 0 || c.pid == shim_procenv_self()) && uid_ok(c.uid, (uid_t)-1);
}

int shim_ident_accepted(int lfd, int nfd, pid_t owner, int proven)
{
    struct ucred c, l;
    if (peer_cred(nfd, &c) < 0)
        return 0;
    /* Our own engine, as nearly always: the listener is not asked (a
     * system call per accept); what it would add only widens both tests. */
    if (proven >= 0 && (proven > 0 || c.pid == shim_procenv_self() || c.pid == owner) &&
        uid_ok(c.uid, (uid_t)-1))
        return 1;
    int have_l = peer_cred(lfd, &l) == 0;
    int pid_ok = proven > 0 || c.pid == shim_procenv_self() || c.pid == owner ||
                 (have_l && c.pid == l.pid) || shim_slots_is_keeper(owner, c.pid);
    if (proven < 0)
        pid_ok = 0; /* a proof promised and not shown */
    if (pid_ok && uid_ok(c.uid, have_l ? l.uid : (uid_t)-1))
        return 1;
    uint64_t n = atomic_fetch_add(&refused, 1) + 1;
    /* Every refusal is counted; the first few are told, then every 1000th:
     * a local flood must not flood the log too. */
    if (n <= 10 || n % 1000 == 0)
        SHIM_LOG(RUDP_LOG_WARN,
                 "refused a connection to a listener from pid %d uid %u: not our engine "
                 "(%llu refused so far)",
                 (int)c.pid, (unsigned)c.uid, (unsigned long long)n);
    return 0;
}

int shim_ident_may_prove(int lfd, int nfd)
{
    struct ucred c, l;
    if (peer_cred(nfd, &c) < 0)
        return 0;
    int have_l = peer_cred(lfd, &l) == 0;
    return uid_ok(c.uid, have_l ? l.uid : (uid_t)-1);
}

int shim_ident_listener(int efd, pid_t owner, uid_t luid)
{
    struct ucred l;
    if (peer_cred(efd, &l) < 0)
        return 0;
    pid_t me = shim_procenv_self();
    return (l.pid == me || l.pid == owner || syscall(SYS_kcmp, me, l.pid, KCMP_VM, 0, 0) == 0) &&
           uid_ok(l.uid, luid);
}

int shim_ident_inherited(int fd)
{
    struct ucred c;
    if (peer_cred(fd, &c) < 0)
        return 0;
    return c.pid == shim_procenv_self() || uid_ok(c.uid, (uid_t)-1);
}

uint64_t shim_ident_refused(void)
{
    return atomic_load(&refused);
}
