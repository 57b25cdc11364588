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
 * PT_INTERP program header. A file that is not ELF (a script) or that we
 * may not read is taken to run it, as before: its interpreter is almost
 * always dynamic.
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
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#include "poison.h"

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
    int fd = open("/etc/ld.so.preload", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    real_close(fd);
    if (n > 0) {
        buf[n] = '\0';
        self.system_preload = list_names_us(buf);
    }
}

static int env_preloads_us(char *const envp[])
{
    const char *list = NULL;
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0)
            list = envp[i] + 11;
    return list && list_names_us(list);
}

/* Whether the file open at fd is an image ld.so would preload us into. */
static int image_takes_us(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
        return 0; /* secure execution: the shim passes everything through */
    Elf64_Ehdr eh; /* the class and machine are where ELF32's are too */
    if (pread(fd, &eh, sizeof eh, 0) < (ssize_t)EI_NIDENT + 4 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return 1; /* a script, or unreadable: its interpreter decides */
    if (eh.e_ident[EI_CLASS] != OUR_CLASS)
        return 0;
#ifdef OUR_MACHINE
    if (eh.e_machine != OUR_MACHINE)
        return 0;
#endif
    if (OUR_CLASS != ELFCLASS64 || eh.e_phentsize < sizeof(Elf64_Phdr))
        return 1;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
            (ssize_t)sizeof ph)
            return 1;
        if (ph.p_type == PT_INTERP)
            return 1;
    }
    return 0; /* static */
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

int shim_newimage_runs_shim(const char *path, int fd, int search, char *const envp[])
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
        return image_takes_us(fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return 1;
    int r = image_takes_us(f);
    real_close(f);
    return r;
}
