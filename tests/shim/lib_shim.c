/*
 * lib_shim.c: the known state of shimtest.h. The log goes to a memfd, not
 * a pipe: a test that makes the shim say more than a pipe holds would
 * block in the shim's write(2) with nobody reading.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shimtest.h"

extern char **environ;

static int log_fd = -1;
static off_t log_read;
static char said[2048];

/* Every RUDP_* variable out of the environment: a developer's RUDP_LOG or
 * RUDP_ENGINES must not change what a test sees. unsetenv shifts environ,
 * so the scan starts again after each removal. */
static void clear_rudp_env(void)
{
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "RUDP_", 5) != 0)
                continue;
            char name[256];
            size_t len = strcspn(*e, "=");
            if (len >= sizeof name)
                continue;
            memcpy(name, *e, len);
            name[len] = '\0';
            unsetenv(name);
            again = 1;
            break;
        }
    }
}

void shimtest_setup(void)
{
    shim_real_init();
    shim_procenv_init();
    clear_rudp_env();
    cr_assert(shim_config_load(1) == 0, "the defaults load");
    log_fd = memfd_create("shimtest-log", MFD_CLOEXEC);
    cr_assert(log_fd >= 0);
    log_read = 0;
    shim_cfg.log_fd = log_fd;
}

static const char *read_from(int fd, off_t *at, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, *at);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    *at += n;
    return buf;
}

const char *shimtest_log(void)
{
    static char buf[1 << 16];
    return read_from(log_fd, &log_read, buf, sizeof buf);
}

const char *shimtest_config_said(void)
{
    int fd = memfd_create("shimtest-said", MFD_CLOEXEC);
    cr_assert(fd >= 0);
    shim_config_tell(fd);
    off_t at = 0;
    read_from(fd, &at, said, sizeof said);
    close(fd);
    said[strcspn(said, "\n")] = '\0';
    return said;
}

int shimtest_new_file_at(int fd)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (s == fd)
        return fd;
    int r = dup3(s, fd, O_CLOEXEC);
    close(s);
    return r;
}
