/*
 * proctitle.c: a keeper's name in ps and top.
 *
 * A keeper is a fork of the program (keeper.c): it would show as the
 * program itself ("python3 -m http.server 8000") for as long as it carries
 * connections, and a supervisor or a test harness would take it for the
 * service still running. So it renames itself: its name (comm: ps -e, top,
 * pgrep, rudp-stat) becomes "rudp-keeper", and its command line (ps -f,
 * ps aux, pgrep -f) "rudp-keeper: " followed by the program's, the way
 * setproctitle() renames sshd, nginx and PostgreSQL processes: the title is
 * written over the argument strings and, past them, over the environment
 * strings that follow them (the kernel reads a command line whose last
 * argument byte is no longer NUL as one string, up to its NUL:
 * get_mm_proctitle() in fs/proc/base.c). The environment is copied to the
 * heap first, so getenv() in the keeper still finds it; /proc/PID/environ
 * shows the title's bytes from then on, as it does for those programs.
 * The areas' addresses come from /proc/self/stat: without /proc, only the
 * name changes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

#define KEEPER_COMM "rudp-keeper"
#define KEEPER_PREFIX "rudp-keeper: "

extern char **environ;

/* arg_start, arg_end, env_start, env_end from /proc/self/stat (fields 48 to
 * 51, proc(5)). 0, or -1 if they cannot be read. */
static int areas(uintptr_t v[4])
{
    char buf[2048];
    if (shim_read_text("/proc/self/stat", buf, sizeof buf) < 0)
        return -1;
    char *p = strrchr(buf, ')'); /* the name before it may hold anything */
    if (!p || p[1] != ' ')
        return -1;
    p += 2;
    for (int field = 3; field < 48; p++) { /* p at field 3, the state */
        if (!*p)
            return -1;
        if (*p == ' ')
            field++;
    }
    for (int i = 0; i < 4; i++) {
        char *end;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p)
            return -1;
        v[i] = (uintptr_t)x;
        p = *end == ' ' ? end + 1 : end;
    }
    return v[0] < v[1] && v[2] <= v[3] ? 0 : -1;
}

/* environ, with every string, copied to the heap: 0, or -1 (unchanged). */
static int move_environ(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **copy = shim_calloc(n + 1, sizeof *copy);
    if (!copy)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(environ[i]) + 1;
        if (!(copy[i] = shim_malloc(len))) {
            while (i--)
                shim_free(copy[i]);
            shim_free(copy);
            return -1;
        }
        memcpy(copy[i], environ[i], len);
    }
    environ = copy; /* the old array is the program's: left as it is */
    return 0;
}

void shim_proctitle_keeper(void)
{
    prctl(PR_SET_NAME, KEEPER_COMM, 0, 0, 0);
    uintptr_t v[4];
    if (areas(v) < 0)
        return;
    char *start = (char *)v[0];
    size_t arg_len = v[1] - v[0];
    /* The room: the arguments, and the environment after them if it is
     * there (where the kernel looks) and can be moved out of the way. */
    size_t room = arg_len;
    int env_after = v[2] == v[1] && v[3] > v[2];
    /* The program's command line as ps shows it: its arguments with
     * spaces between, or the title the program set itself (the last byte
     * not NUL: one string, maybe into the environment). */
    char args[1024];
    size_t n = 0;
    size_t limit = start[arg_len - 1] != '\0' && env_after ? v[3] - v[0] : arg_len;
    for (size_t i = 0; i < limit && n < sizeof args - 1; i++) {
        char c = start[i];
        if (c == '\0') {
            if (limit != arg_len)
                break; /* the end of a title */
            c = ' ';
        }
        args[n++] = c;
    }
    while (n && args[n - 1] == ' ')
        n--;
    args[n] = '\0';
    if (env_after && move_environ() == 0)
        room = v[3] - v[0];
    char title[sizeof KEEPER_PREFIX + sizeof args];
    size_t len = (size_t)snprintf(title, sizeof title, "%s%s", KEEPER_PREFIX, args);
    if (len > room - 1)
        len = room - 1;
    memcpy(start, title, len);
    memset(start + len, 0, room - len);
}
