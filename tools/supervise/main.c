/* rudp-supervise's command line (supervise.h says how it works). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervise.h"

const char *me = "rudp-supervise";

__attribute__((format(printf, 1, 2))) void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", me);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: %s [--shim PATH] [--pass | --debug] [--] PROGRAM [ARG...]\n"
            "       %s --probe | --classify PROGRAM\n",
            me, me);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--serve") == 0)
        return serve(atoi(argv[2]), (pid_t)atoi(argv[3]),
                     strcmp(argv[4], "pass") == 0 ? 1 : strcmp(argv[4], "debug") == 0 ? 2 : 0);
    /* rudp-run's questions: an answer in words on stdout, the choice in
     * the exit status (supervise.h) */
    char why[256];
    if (argc == 2 && strcmp(argv[1], "--probe") == 0) {
        int r = probe(why, sizeof why);
        printf("%s\n", r == 0 ? "ok: the supervisor can work here" : why);
        return r == 0 ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "--classify") == 0) {
        int r = classify(argv[2], why, sizeof why);
        printf("%s\n", why);
        return r;
    }
    char shim[PATH_MAX] = "";
    int pass = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--pass") == 0) {
            pass = 1;
        } else if (strcmp(argv[i], "--debug") == 0) {
            pass = 2;
        } else if (strcmp(argv[i], "--shim") == 0 && i + 1 < argc) {
            snprintf(shim, sizeof shim, "%s", argv[++i]);
        } else {
            return usage();
        }
    }
    if (i >= argc)
        return usage();
    if (!shim[0] && find_shim(shim, sizeof shim) < 0) {
        warn("%s", "cannot find librudp_shim.so (use --shim PATH)");
        return 127;
    }
    /* A 32-bit program's calls (i386, x32; AArch32) pass the filter unseen:
     * it runs, on kernel TCP, and is told so, as rudp-run tells it. */
    if (classify(argv[i], why, sizeof why) == CLASS_NONE)
        warn("warning: %s: it is %s; its connections will use kernel TCP", argv[i], why);
    return start(shim, pass, argv + i);
}
