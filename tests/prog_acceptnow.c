/*
 * prog_acceptnow: a connection whose connect() has returned is in the
 * listener's accept queue, as Linux TCP on loopback has it.
 *
 *   prog_acceptnow            exit 0 iff the check below holds
 *
 * A forked child starts NCONN non-blocking connects to a listener on the
 * loopback address in one turn (as an event loop does for two requests),
 * waits until every one is writable with SO_ERROR 0, and only then tells
 * the parent (a byte on a pipe). The parent, which has not touched the
 * listener meanwhile, then calls a non-blocking accept() NCONN times: each
 * must return a connection at once, never EAGAIN. ROUNDS rounds.
 *
 * Linux appends a connection to the accept queue when it processes the
 * handshake's last ACK (tcp_check_req() -> inet_csk_reqsk_queue_add()); on
 * loopback the client's ACK is processed in the softirq pass that handled
 * the SYN-ACK, before the client can see its connect() complete and tell
 * anyone. So a server that counts its connections (an HTTP server with a
 * limit of one, accept-order logic) sees every connection whose client
 * has connected. Issue 43, finding 8: under the shim the server's engine
 * handed a connection to the application's listener only when the
 * client's first packet after the SYNACK arrived, so the client could
 * connect, and the server find its queue short, one after the other.
 *
 * Every wait is bounded. One "ok:" line, "transport: KIND" for a client
 * fd. Exit 0 iff the check held; 1 with a "FAIL:" line otherwise; 3 if the
 * watchdog (60 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define ROUNDS 30
#define NCONN 4
#define EVENT_MS 5000

const char *prog_name = "prog_acceptnow";
static pid_t child = -1;

static void kill_child(void)
{
    if (child > 0)
        kill(child, SIGKILL);
}

/* The child: NCONN connects per round, all at once; "c" on `to` once all
 * are connected, then waits for "a" on `from` before closing them. */
static void clients(unsigned port, int to, int from)
{
    prog_name = "prog_acceptnow(client)";
    watchdog(WATCHDOG_S);
    for (int round = 0; round < ROUNDS; round++) {
        int c[NCONN];
        struct sockaddr_storage ss;
        socklen_t sl = loopback(AF_INET, port, &ss);
        for (int i = 0; i < NCONN; i++) {
            c[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            SYS(c[i]);
            int r = connect(c[i], (struct sockaddr *)&ss, sl);
            CHECK(r == 0 || errno == EINPROGRESS, "round %d: connect %d: %s", round, i,
                  strerror(errno));
        }
        for (int i = 0; i < NCONN; i++) {
            CHECK(poll_for(c[i], POLLOUT, EVENT_MS) & POLLOUT,
                  "round %d: connect %d not done within %d ms", round, i, EVENT_MS);
            int e = so_error(c[i]);
            CHECK(e == 0, "round %d: connect %d: SO_ERROR %s", round, i, strerror(e));
        }
        if (round == 0)
            printf("transport: %s (client)\n", fd_transport(c[0]));
        write_exact(to, "c", 1);
        char a;
        read_exact(from, &a, 1, EVENT_MS);
        for (int i = 0; i < NCONN; i++)
            close(c[i]);
    }
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    prog_on_fail = kill_child;
    int l = listener_lo(0, 64);
    int fl = fcntl(l, F_GETFL);
    SYS(fcntl(l, F_SETFL, fl | O_NONBLOCK));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    SYS(getsockname(l, (struct sockaddr *)&ss, &sl));
    int up[2], down[2];
    SYS(pipe(up));
    SYS(pipe(down));
    child = fork();
    SYS(child);
    if (child == 0) {
        close(l);
        clients(port_of(&ss), up[1], down[0]);
        _exit(0);
    }
    for (int round = 0; round < ROUNDS; round++) {
        char c;
        read_exact(up[0], &c, 1, EVENT_MS); /* all NCONN connect()s have returned */
        int a[NCONN];
        for (int i = 0; i < NCONN; i++) {
            a[i] = accept(l, NULL, NULL);
            CHECK(a[i] >= 0, "round %d: accept %d of %d: %s, though every client's connect() "
                  "had returned", round, i + 1, NCONN, strerror(errno));
        }
        for (int i = 0; i < NCONN; i++)
            close(a[i]);
        write_exact(down[1], "a", 1);
    }
    CHECK(reap_within(child, EVENT_MS, "the client") == 0, "the client failed");
    child = -1;
    printf("ok: %d rounds of %d connects started at once: each accepted at once once its "
           "client had connected\n", ROUNDS, NCONN);
    printf("PASS: %s\n", prog_name);
    return 0;
}
