/* rudp-supervise --classify PROGRAM: which front end reaches PROGRAM, read
 * from its ELF headers (rudp-run's automatic choice; supervise.h). No
 * readelf: rudp-run must choose on a machine without binutils too. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filter.h"
#include "supervise.h"

/* The file mapped whole (a program's headers may sit anywhere in it, the
 * section names near its end; only the pages read are read). NULL:
 * unreadable, or empty. */
static const unsigned char *map(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    void *b = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        b = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        *len = (size_t)st.st_size;
    } else {
        errno = ENOEXEC;
    }
    close(fd);
    return b == MAP_FAILED ? NULL : b;
}

/* [off, off + n) lies inside the file. */
static int inside(size_t len, uint64_t off, uint64_t n)
{
    return off <= len && n <= len - off;
}

/* The string at offset at of the table [off, off + size) is name. */
static int named(const unsigned char *b, uint64_t off, uint64_t size, uint64_t at, const char *name)
{
    size_t k = strlen(name);
    return at < size && k < size - at && memcmp(b + off + at, name, k + 1) == 0;
}

/* A section of the file named name (NULL: none). */
static const Elf64_Shdr *section(const unsigned char *b, size_t len, const char *name)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shstrndx >= eh->e_shnum ||
        !inside(len, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
        return NULL;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + eh->e_shoff);
    const Elf64_Shdr *names = &sh[eh->e_shstrndx];
    if (!inside(len, names->sh_offset, names->sh_size))
        return NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (named(b, names->sh_offset, names->sh_size, sh[i].sh_name, name))
            return &sh[i];
    }
    return NULL;
}

/* The program asks the dynamic loader for libc.so.6 (DT_NEEDED). */
static int needs_glibc(const unsigned char *b, size_t len)
{
    const Elf64_Shdr *dyn = section(b, len, ".dynamic"), *str = section(b, len, ".dynstr");
    if (!dyn || !str || !inside(len, dyn->sh_offset, dyn->sh_size) ||
        !inside(len, str->sh_offset, str->sh_size))
        return 0;
    const Elf64_Dyn *d = (const Elf64_Dyn *)(b + dyn->sh_offset);
    for (size_t i = 0; i < dyn->sh_size / sizeof *d && d[i].d_tag != DT_NULL; i++)
        if (d[i].d_tag == DT_NEEDED &&
            named(b, str->sh_offset, str->sh_size, d[i].d_un.d_val, "libc.so.6"))
            return 1;
    return 0;
}

/* classify() of a script's interpreter depth levels down (Linux follows
 * #! 4 levels deep at most). */
static int classify_at(const char *path, char *why, size_t len, int depth)
{
    size_t n = 0;
    errno = 0;
    const unsigned char *b = map(path, &n);
    if (!b) {
        snprintf(why, len, "cannot read it (%s)", strerror(errno ? errno : EIO));
        return CLASS_UNKNOWN;
    }
    int r = CLASS_PRELOAD;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b;
    /* the architecture this binary filters (filter.c), the only one */
    const struct filter_abi *abi = filter_abi_native();
    const char *own = abi ? abi->name : "supported";
    if (n >= 2 && b[0] == '#' && b[1] == '!') {
        /* A script: its interpreter decides (#!/usr/bin/env NAME counts
         * as env, a glibc program: the preload, which reaches NAME only if
         * NAME is a glibc program too). */
        char interp[256];
        size_t i = 2, k = 0;
        while (i < n && (b[i] == ' ' || b[i] == '\t'))
            i++;
        while (i < n && k + 1 < sizeof interp && b[i] != ' ' && b[i] != '\t' && b[i] != '\n')
            interp[k++] = (char)b[i++];
        interp[k] = 0;
        munmap((void *)b, n);
        if (!k || depth >= 4) {
            snprintf(why, len, "a script with no interpreter it can run");
            return CLASS_UNKNOWN;
        }
        char sub[200];
        int c = classify_at(interp, sub, sizeof sub, depth + 1);
        snprintf(why, len, "a script run by %s, %s", interp, sub);
        return c == CLASS_UNKNOWN ? CLASS_PRELOAD : c;
    }
    if (n < sizeof *eh || memcmp(b, ELFMAG, SELFMAG) != 0) {
        snprintf(why, len, "not an ELF program");
        r = CLASS_UNKNOWN;
    } else if (!abi || b[EI_CLASS] != ELFCLASS64 || eh->e_machine != abi->machine) {
        snprintf(why, len, "not an %s program (the supervisor filters %s calls only)", own, own);
        r = CLASS_NONE;
    } else if (section(b, n, ".note.go.buildid") || section(b, n, ".go.buildinfo")) {
        snprintf(why, len, "a Go program (Go makes its system calls without libc)");
        r = CLASS_SUPERVISE;
    } else {
        char ibuf[256];
        const char *interp = NULL;
        if (eh->e_phentsize == sizeof(Elf64_Phdr) &&
            inside(n, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))) {
            const Elf64_Phdr *ph = (const Elf64_Phdr *)(b + eh->e_phoff);
            for (unsigned i = 0; i < eh->e_phnum; i++)
                if (ph[i].p_type == PT_INTERP && ph[i].p_filesz &&
                    inside(n, ph[i].p_offset, ph[i].p_filesz)) {
                    size_t k = ph[i].p_filesz < sizeof ibuf ? ph[i].p_filesz : sizeof ibuf - 1;
                    memcpy(ibuf, b + ph[i].p_offset, k);
                    ibuf[k] = 0;
                    interp = ibuf;
                }
        }
        const char *base = interp ? strrchr(interp, '/') : NULL;
        base = base ? base + 1 : interp;
        if (!interp) {
            snprintf(why, len, "statically linked (no dynamic loader to preload with)");
            r = CLASS_SUPERVISE;
        } else if (strncmp(base, "ld-linux", 8) != 0) {
            snprintf(why, len, "loaded by %.100s, not glibc's loader (LD_PRELOAD cannot reach its socket calls)",
                     interp);
            r = CLASS_SUPERVISE;
        } else if (!needs_glibc(b, n)) {
            snprintf(why, len, "not linked against glibc (no libc.so.6: its socket calls bypass it)");
            r = CLASS_SUPERVISE;
        } else {
            snprintf(why, len, "dynamically linked against glibc");
        }
    }
    munmap((void *)b, n);
    return r;
}

int classify(const char *path, char *why, size_t len)
{
    return classify_at(path, why, len, 0);
}
