/*
 * newimage.c: whether the image an exec (or posix_spawn) starts will run
 * the shim, so that the slabs' memfds and RUDP_EXEC_SLABS go only to an
 * image that maps them (slots.c) and are never left at fds 700 and above,
 * and in the environment, of one that does not: a program that cleared
 * LD_PRELOAD, a static binary, a binary of another ELF class or machine
 * (ld.so does not load our library into it), a set-uid or set-gid one (in
 * secure execution the shim passes everything through, sock.c).
 *
 * The shim runs in the new image when ld.so preloads it: from the LD_PRELOAD
 * of the new environment (the last entry of that name, as rtld's
 * process_envvars() takes it; a list split by spaces and colons) naming
 * this library, by path (the same file: device and inode) or by file name
 * (searched in the library path), or from /etc/ld.so.preload, read once
 * at start-up. And only when the image is dynamic: an ELF file with a
 * PT_INTERP program header. A script (#!) is followed to its interpreter
 * as the kernel does (fs/binfmt_script.c: the first 256 bytes, the name up
 * to a blank; the interpreter may be a script too, up to the kernel's
 * limit of rewrites, fs/exec.c exec_binprm), and the image that counts is
 * the last. A format registered with binfmt_misc is followed to its
 * interpreter the same way, and first at each step, as the kernel tries
 * it first (binfmt_misc.c: insert_binfmt; check_file: an enabled entry
 * whose magic, under its mask, is at its offset in the first bytes, or
 * whose extension is what follows the last '.' of the name exec'd, the
 * path given or the interpreter's), read from /proc/sys/fs/binfmt_misc
 * (nothing there, or not mounted: no format). With its C flag the
 * credentials, so secure execution, come from the file matched, not the
 * interpreter (binfmt-misc.rst). A file we may not read is taken to run
 * it, as before.
 *
 * Secure execution (AT_SECURE: ld.so ignores a LD_PRELOAD path, and the
 * shim passes everything through) is told as the kernel tells it: the
 * set-uid or set-gid bit (set-gid with group execute) of the last image
 * counts only where the mount allows it (bprm_fill_uid: mnt_may_suid, so
 * not on a nosuid mount, statvfs ST_NOSUID) and without no_new_privs; and
 * it is secure only when the ids change (security/commoncap.c
 * cap_bprm_creds_from_file: the new effective uid or gid differs from the
 * real one), so root running a root-owned set-uid binary runs the shim.
 * File capabilities make it secure for a process whose real uid is not 0
 * (the same function). A spawn with POSIX_SPAWN_RESETIDS runs the child
 * with the caller's real ids (glibc's spawni: seteuid(getuid()) and
 * setegid(getgid()) before the exec), so a set-uid caller's effective
 * ids do not count then: the image's own bits alone decide.
 *
 * Called between vfork() and exec too: nothing here allocates or locks;
 * open, pread, fstat and stat are async-signal-safe.
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

#if defined(__x86_64__)
#define OUR_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define OUR_MACHINE EM_AARCH64
#elif defined(__riscv)
#define OUR_MACHINE EM_RISCV
#endif
#define OUR_CLASS (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32)

static struct {
    int known;          /* dladdr found our file */
    dev_t dev;
    ino_t ino;
    char base[NAME_MAX + 1];
    int system_preload; /* /etc/ld.so.preload names us */
} self;

static int names_us(const char *entry, size_t len)
{
    char path[PATH_MAX];
    if (!len || len >= sizeof path)
        return 0;
    memcpy(path, entry, len);
    path[len] = '\0';
    const char *slash = strrchr(path, '/');
    struct stat st;
    if (slash && stat(path, &st) == 0 && st.st_dev == self.dev && st.st_ino == self.ino)
        return 1;
    return strcmp(slash ? slash + 1 : path, self.base) == 0;
}

/* Whether a preload list (separated by spaces and colons) names us. */
static int list_names_us(const char *list)
{
    while (*list) {
        size_t n = strcspn(list, " :\t\n");
        if (names_us(list, n))
            return 1;
        list += n;
        list += strspn(list, " :\t\n");
    }
    return 0;
}

void shim_newimage_init(void)
{
    Dl_info info;
    struct stat st;
    if (!dladdr((void *)shim_newimage_init, &info) || !info.dli_fname ||
        stat(info.dli_fname, &st) < 0)
        return;
    self.dev = st.st_dev;
    self.ino = st.st_ino;
    const char *slash = strrchr(info.dli_fname, '/');
    const char *base = slash ? slash + 1 : info.dli_fname;
    if (strlen(base) >= sizeof self.base)
        return;
    strcpy(self.base, base);
    self.known = 1;
    char buf[4096];
    if (shim_read_text("/etc/ld.so.preload", buf, sizeof buf) > 0)
        self.system_preload = list_names_us(buf);
}

static int env_preloads_us(char *const envp[])
{
    const char *list = NULL;
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0)
            list = envp[i] + 11;
    return list && list_names_us(list);
}

/* Whether exec'ing the file open at fd (st its stat) by this process is
 * secure execution (see the top of this file). */
static int secure_exec(int fd, const struct stat *st, int resetids)
{
    int suid = (st->st_mode & S_ISUID) != 0;
    int sgid = (st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
    struct statvfs v;
    int may_suid = !(fstatvfs(fd, &v) == 0 && (v.f_flag & ST_NOSUID)) &&
                   prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1;
    if (!may_suid)
        suid = sgid = 0;
    uid_t euid = suid ? st->st_uid : resetids ? getuid() : geteuid();
    gid_t egid = sgid ? st->st_gid : resetids ? getgid() : getegid();
    if (euid != getuid() || egid != getgid())
        return 1;
    return may_suid && getuid() != 0 && fgetxattr(fd, "security.capability", NULL, 0) > 0;
}

/* The interpreter a script at fd names (#!), into out; 0 if fd is no
 * script. fs/binfmt_script.c: after "#!", blanks, then the name up to a
 * blank or the end of the line, all within the first 256 bytes. */
static int script_interp(int fd, char *out, size_t cap)
{
    char buf[256 + 1];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n < 3 || buf[0] != '#' || buf[1] != '!')
        return 0;
    buf[n] = '\0';
    char *p = buf + 2;
    p += strspn(p, " \t");
    size_t len = strcspn(p, " \t\n");
    if (!len || len >= cap || !memchr(buf, '\n', (size_t)n))
        return 0;
    memcpy(out, p, len);
    out[len] = '\0';
    return 1;
}

#define MISC_DIR "/proc/sys/fs/binfmt_misc"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Parses a hex string (the /proc form of magic and mask) into out, at most
 * cap bytes; returns the count. */
static size_t unhex(const char *p, unsigned char *out, size_t cap)
{
    size_t n = 0;
    for (; n < cap; p += 2) {
        int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);
        if (lo < 0)
            break;
        out[n++] = (unsigned char)(hi << 4 | lo);
    }
    return n;
}

/* The value after key on a line of text ("key value\n"), or NULL. */
static const char *field(const char *text, const char *key)
{
    size_t k = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, key, k) == 0)
            return l + k;
    return NULL;
}

/* Whether the entry (its /proc text) matches the file whose first bytes
 * are head (n of them) exec'd by name; its interpreter into out, *cflag. */
static int misc_entry_matches(const char *text, const unsigned char *head, size_t n,
                              const char *name, char *out, size_t cap, int *cflag)
{
    if (strncmp(text, "enabled\n", 8) != 0)
        return 0;
    const char *in = field(text, "interpreter "), *fl = field(text, "flags: ");
    if (!in)
        return 0;
    size_t len = strcspn(in, "\n");
    if (!len || len >= cap)
        return 0;
    const char *ext = field(text, "extension .");
    if (ext) {
        const char *dot = strrchr(name, '.');
        size_t el = strcspn(ext, "\n");
        if (!dot || strlen(dot + 1) != el || strncmp(dot + 1, ext, el) != 0)
            return 0;
    } else {
        const char *off = field(text, "offset "), *mg = field(text, "magic ");
        const char *mk = field(text, "mask ");
        if (!off || !mg)
            return 0;
        unsigned char magic[256], mask[256];
        size_t o = (size_t)strtoul(off, NULL, 10);
        size_t m = unhex(mg, magic, sizeof magic);
        size_t km = mk ? unhex(mk, mask, sizeof mask) : 0;
        if (!m || o + m > n)
            return 0;
        for (size_t j = 0; j < m; j++)
            if ((head[o + j] ^ magic[j]) & (j < km ? mask[j] : 0xff))
                return 0;
    }
    memcpy(out, in, len);
    out[len] = '\0';
    *cflag = fl && memchr(fl, 'C', strcspn(fl, "\n")) != NULL;
    return 1;
}

/* The interpreter binfmt_misc runs the file at fd (exec'd by name) with,
 * into out; 0 if no enabled format matches. No allocation (vfork):
 * getdents64 on the directory. */
static int misc_interp(int fd, const char *name, char *out, size_t cap, int *cflag)
{
    char text[1024];
    int sfd = open(MISC_DIR "/status", O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return 0; /* not mounted: no format */
    ssize_t k = real_read(sfd, text, sizeof text - 1);
    real_close(sfd);
    if (k < 7 || strncmp(text, "enabled", 7) != 0)
        return 0;
    unsigned char head[256];
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n < 0)
        n = 0;
    int dfd = open(MISC_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    int found = 0;
    char ents[2048];
    long got;
    while (!found && (got = syscall(SYS_getdents64, dfd, ents, sizeof ents)) > 0) {
        for (long at = 0; at < got && !found;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(ents + at);
            at += d->d_reclen;
            if (d->d_name[0] == '.' || strcmp(d->d_name, "status") == 0 ||
                strcmp(d->d_name, "register") == 0)
                continue;
            int efd = openat(dfd, d->d_name, O_RDONLY | O_CLOEXEC);
            if (efd < 0)
                continue;
            k = real_read(efd, text, sizeof text - 1);
            real_close(efd);
            if (k <= 0)
                continue;
            text[k] = '\0';
            found = misc_entry_matches(text, head, (size_t)n, name, out, cap, cflag);
        }
    }
    real_close(dfd);
    return found;
}

/* Whether the file open at fd (exec'd by name) is an image ld.so would
 * preload us into; a binfmt_misc format or a script is followed to its
 * interpreter, the last one deciding. */
#define SCRIPT_DEPTH 5 /* fs/exec.c exec_binprm: ELOOP after that */
static int image_takes_us(int fd, const char *name, int resetids)
{
    char interp[2][PATH_MAX];
    int own = -1, r = 1, sec = -1; /* sec: decided by a C format, -1: not */
    for (int depth = 0; depth <= SCRIPT_DEPTH; depth++) {
        char *next = interp[depth & 1];
        int cflag = 0;
        if (!misc_interp(fd, name ? name : "", next, PATH_MAX, &cflag) &&
            !script_interp(fd, next, PATH_MAX))
            break;
        if (cflag) {
            struct stat cst;
            sec = fstat(fd, &cst) == 0 && secure_exec(fd, &cst, resetids);
        }
        int f = open(next, O_RDONLY | O_CLOEXEC);
        if (f < 0)
            goto out; /* the exec fails, or we may not read it: as before */
        if (own >= 0)
            real_close(own);
        fd = own = f;
        name = next;
        if (depth == SCRIPT_DEPTH) {
            r = 0; /* the exec fails with ELOOP: pass nothing */
            goto out;
        }
    }
    struct stat st;
    if (sec == 1 || (sec < 0 && fstat(fd, &st) == 0 && secure_exec(fd, &st, resetids))) {
        r = 0; /* secure execution: the shim passes everything through */
        goto out;
    }
    Elf64_Ehdr eh; /* the class and machine are where ELF32's are too */
    if (pread(fd, &eh, sizeof eh, 0) < (ssize_t)EI_NIDENT + 4 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        goto out; /* a format we do not know, or unreadable: as before */
    r = 0;
    if (eh.e_ident[EI_CLASS] != OUR_CLASS)
        goto out;
#ifdef OUR_MACHINE
    if (eh.e_machine != OUR_MACHINE)
        goto out;
#endif
    r = 1;
    if (OUR_CLASS != ELFCLASS64 || eh.e_phentsize < sizeof(Elf64_Phdr))
        goto out;
    r = 0; /* static, unless a PT_INTERP is found */
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
            (ssize_t)sizeof ph) {
            r = 1;
            break;
        }
        if (ph.p_type == PT_INTERP) {
            r = 1;
            break;
        }
    }
out:
    if (own >= 0)
        real_close(own);
    return r;
}

/* Where execvp() and posix_spawnp() find file: PATH of the caller's
 * environment (glibc's __execvpe and __spawni search the caller's, not
 * the new one), "/bin:/usr/bin" without one; the first executable
 * regular file. Returns 0 if none (the exec will fail anyway). */
static int search_path(const char *file, char *out, size_t cap)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    size_t flen = strlen(file);
    for (;;) {
        size_t n = strcspn(path, ":");
        const char *dir = n ? path : ".";
        size_t dlen = n ? n : 1;
        if (dlen + 1 + flen < cap) {
            memcpy(out, dir, dlen);
            out[dlen] = '/';
            memcpy(out + dlen + 1, file, flen + 1);
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return 1;
        }
        if (!path[n])
            return 0;
        path += n + 1;
    }
}

int shim_newimage_runs_shim(const char *path, int fd, int search, char *const envp[],
                            int resetids)
{
    if (!self.known)
        return 1; /* we cannot tell: as before */
    if (!self.system_preload && !env_preloads_us(envp))
        return 0;
    char found[PATH_MAX];
    if (path && search && !strchr(path, '/')) {
        if (!search_path(path, found, sizeof found))
            return 1;
        path = found;
    }
    if (!path)
        return image_takes_us(fd, NULL, resetids);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return 1;
    int r = image_takes_us(f, path, resetids);
    real_close(f);
    return r;
}
