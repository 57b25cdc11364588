# librudp_shim: one non-recursive GNU Makefile.
#
#   make            build core, the shim, the user's tools (tools/ -> build/bin/),
#                   unit tests and test programs (-> build/progs/)
#                   (first installing what the build needs, if missing)
#   make test       install what is missing, then the settings check, layers, unit tests
#                   + simulation + integration
#   make layers     shim/'s layers keep their order (tests/check_layers.sh, tests/layers.allow),
#                   every test program is run by a script (tests/progs.table),
#                   and no function of shim/ or tools/supervise/ passes 150 lines
#   make demo       real programs over rudp, with proof it went over UDP
#   make bench      benchmarks against kernel TCP on the link emulator
#   make asan|ubsan|tsan   sanitizer builds under build/<san>/ and their test runs
#   make fuzz       libFuzzer targets for a bounded time (clang)
#   make install    library, rudp-run, tools, man pages under PREFIX (/usr/local)
#   make uninstall  removes them again
#   make deb        the Debian package, built by dpkg-buildpackage, in build/deb/
#   make bench-docs the last make bench run's table into integration/bench/README.md
#   make aarch64    the shim, the supervisor and the tools cross-built into
#                   build/aarch64/, their unit tests and a smoke test under qemu-user
#
# Everything lands under $(BUILD); sanitizer builds use their own BUILD so
# objects never mix.

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
PREFIX  ?= /usr/local

# The one version number: the library carries it ("librudp_shim version
# X, commit C" in its read-only data, shim/base/version.c) and rudp-run --version
# reads it from the library it would preload, so the two cannot disagree.
# The minor version changes with the wire or with behaviour a user sees, the
# patch with a fix alone (docs/compatibility.md, "Versions").
VERSION := 0.13.0
# The commit built (git describe: the short hash, -dirty with changes not
# committed); "unknown" outside a git checkout, as from a tarball.
COMMIT := $(shell [ -e .git ] && git describe --always --dirty 2>/dev/null || echo unknown)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE $(OPT) -g -fno-omit-frame-pointer \
              -MMD -MP $(WARN) $(SAN)
# core/ and shim/ also take -Wconversion; Criterion's macros trip it in tests.
CFLAGS_LIB := $(CFLAGS_ALL) -Wconversion -fPIC -fvisibility=hidden
# LDDIRS: more library directories (-L, -Wl,-rpath-link), for make
# aarch64's Criterion, unpacked apart (integration/aarch64/root.sh).
LDDIRS  ?=
LDLIBS_ALL := -lpthread $(SAN) $(LDDIRS)
# Keyed mode's cryptography (core/crypto.c) is libsodium's: everything that
# links the core links it too (the shim, the unit tests, the fuzz targets);
# the plain programs do not. libcore.a needs nothing else (tests/core_alone.c
# proves it). The DATA datagrams' AES-256-GCM is OpenSSL's libcrypto's where
# it measures faster, through a backend the shim installs
# (shim/base/aead_openssl.c), bound by dlopen() at the first keyed context
# rather than linked: the build needs its headers (libssl-dev), a program
# that never goes keyed never loads it. The unit tests and cryptocost link
# that backend's object, with -ldl; the unit tests also call libcrypto
# directly.
LDLIBS_CORE := -lsodium
AEAD_OPENSSL := $(BUILD)/shim/base/aead_openssl.o

# core/ holds the protocol, flat; core/cc/ the congestion controllers behind
# cc/cc.h's table of function pointers. Core files include each other from
# the core root ("cc/cc.h", "rtt.h"), hence -Icore.
CORE_SRC := $(wildcard core/*.c) $(wildcard core/cc/*.c)
CORE_HDR := $(wildcard core/*.h) $(wildcard core/cc/*.h)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_LIB := $(BUILD)/libcore.a

# shim/ is layered in folders (shim/base/base.h says how); their order is
# tests/check_layers.sh's, which make layers runs.
SHIM_SRC := $(wildcard shim/*/*.c)
SHIM_OBJ := $(SHIM_SRC:%.c=$(BUILD)/%.o)
SHIM_SO  := $(BUILD)/librudp_shim.so

# Unit tests: every tests/test_*.c plus shared helpers tests/lib_*.c, one binary.
UNIT_SRC := $(wildcard tests/test_*.c) $(wildcard tests/lib_*.c)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(BUILD)/tests/unit
# The core alone (tests/core_alone.c): libcore.a linked with libsodium only.
CORE_ALONE := $(BUILD)/tests/core_alone

# Programs of the tests, benchmarks and chat demo: each tests/prog_*.c and
# integration/*/*.c is one, built to $(BUILD)/progs/ (integration/lib/lib.sh:
# $BIN), apart from the user's tools. A program of MULTI_PROGS is several
# files: main in P.c, its parts P_*.c beside it, their private header P.h.
MULTI_PROGS := integration/emu/linkemu integration/chat/chatd tests/prog_transparency \
               tests/prog_apprecv
PROG_PARTS_SRC := $(foreach p,$(MULTI_PROGS),$(wildcard $(p)_*.c))
PROG_SRC := $(filter-out $(PROG_PARTS_SRC),$(wildcard tests/prog_*.c) $(wildcard integration/*/*.c))
PROG_BIN := $(addprefix $(BUILD)/progs/,$(notdir $(basename $(PROG_SRC))))

# The user's tools, sources in tools/, and only they in $(BUILD)/bin/
# (lib.sh: $TOOLS): rudp-stat and rudp-supervise built from C, rudp-run,
# rudp-plot and the Wireshark dissector copied, so that build/bin/rudp-run
# finds the library (../librudp_shim.so) and the supervisor beside it and
# make install takes them from one place.
TOOL_EXE  := $(BUILD)/bin/rudp-run $(BUILD)/bin/rudp-supervise $(BUILD)/bin/rudp-stat \
             $(BUILD)/bin/rudp-plot
TOOL_DATA := $(BUILD)/bin/rudp.lua
TOOL_COPY := $(filter-out $(BUILD)/bin/rudp-stat $(BUILD)/bin/rudp-supervise,$(TOOL_EXE)) \
             $(TOOL_DATA)
TOOL_BIN  := $(TOOL_EXE) $(TOOL_DATA)

FUZZ_SRC := $(wildcard tests/fuzz_*.c)

.PHONY: all lib shim progs unit test unit-test integration-test demo bench \
        asan ubsan tsan fuzz install uninstall clean check-exports check-tls check-settings \
        deps-build tools layers layers-core funclen deb bench-docs aarch64

all: lib shim progs tools $(UNIT_BIN) $(CORE_ALONE)

lib: $(CORE_LIB)
progs: $(PROG_BIN)
tools: $(TOOL_BIN)

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) -Icore -c $< -o $@

# signals.c's sigaction() is called by ThreadSanitizer's own start-up,
# before TSan can take an instrumented call: it carries no instrumentation.
$(BUILD)/shim/lifetime/signals.o: CFLAGS_LIB := $(filter-out -fsanitize=thread,$(CFLAGS_LIB))

$(BUILD)/shim/%.o: shim/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) -Ishim -Icore -c $< -o $@

# The version reaches the one object that carries it (rebuilt when the
# Makefile, where VERSION is set, changes, or the commit: $(BUILD)/commit is
# rewritten only then).
$(BUILD)/shim/base/version.o: CFLAGS_LIB += -DSHIM_VERSION='"$(VERSION)"' \
                                            -DSHIM_COMMIT='"$(COMMIT)"'
$(BUILD)/shim/base/version.o: Makefile $(BUILD)/commit
$(BUILD)/commit: FORCE
	@mkdir -p $(@D)
	@echo '$(COMMIT)' | cmp -s - $@ || echo '$(COMMIT)' >$@
FORCE:

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

ifneq ($(SHIM_SRC),)
shim: $(SHIM_SO)
# Linked to a temporary name and renamed: a program starting meanwhile
# loads the old library or the new one, never a half-written file. Its
# static TLS, which every thread of the program pays from its stack, must
# stay under 1 KiB (tests/check_tls.sh), or the build fails.
$(SHIM_SO): $(SHIM_OBJ) $(CORE_LIB)
	$(CC) -shared -o $@.tmp $(SHIM_OBJ) $(CORE_LIB) -Wl,--exclude-libs,ALL \
	    -Wl,-z,now -ldl $(LDLIBS_CORE) $(LDLIBS_ALL)
	@tests/check_tls.sh $@.tmp 1024 >/dev/null || { tests/check_tls.sh $@.tmp 1024; rm -f $@.tmp; exit 1; }
	mv -f $@.tmp $@
ifeq ($(BUILD),build)
	ln -sf $(BUILD)/librudp_shim.so librudp_shim.so
endif
else
shim:
endif

# Every test object first includes tests/cr_gt.h: Criterion 2.4.1's gt()
# is >= (see there).
$(BUILD)/tests/%.o: tests/%.c tests/cr_gt.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -include tests/cr_gt.h -Icore -c $< -o $@

$(UNIT_BIN): $(UNIT_OBJ) $(CORE_LIB) $(AEAD_OPENSSL)
	$(CC) -o $@ $(UNIT_OBJ) $(AEAD_OPENSSL) $(CORE_LIB) -lcriterion -lm $(LDLIBS_CORE) -ldl \
	    -lcrypto $(LDLIBS_ALL)

# The core alone: a program on rudp.h only, linked with libcore.a and
# libsodium and nothing else (no -ldl, no -lcrypto), that runs a keyed and
# an unkeyed connection in memory; make unit-test builds and runs it, so a
# core that needs another library fails to link there.
# glibc 2.34 moved dlopen into libc itself, where a link without -ldl finds
# it: so the library's undefined symbols are read too, and a dlopen, dlsym
# or any OpenSSL call in it fails the build, naming them.
CORE_FORBIDDEN := dlopen|dlmopen|dlsym|dlvsym|EVP_|OSSL_|ERR_|OPENSSL_
$(CORE_ALONE): tests/core_alone.c core/rudp.h $(CORE_LIB)
	@mkdir -p $(@D)
	@if nm -A -u $(CORE_LIB) | grep -E ' U ($(CORE_FORBIDDEN))'; then \
	    echo "core_alone: libcore.a must not load libraries or call OpenSSL (above)"; exit 1; fi
	$(CC) $(filter-out -MMD -MP,$(CFLAGS_ALL)) -Icore -o $@ $< $(CORE_LIB) -lsodium -lm

# Programs are plain C, no -Wconversion, built from one file each; the test
# programs that include tests/progutil.h are linked with tests/progutil.c,
# a program of MULTI_PROGS with its parts.
PROG_WITH_UTIL := $(shell grep -l '"progutil.h"' tests/prog_*.c)
PROG_UTIL = $(if $(filter $(PROG_WITH_UTIL),$(1)),tests/progutil.c)
PROG_PARTS = $(if $(filter $(basename $(1)),$(MULTI_PROGS)),$(wildcard $(basename $(1))_*.c))
define prog_rule
$(BUILD)/progs/$(notdir $(basename $(1))): $(1) $(call PROG_UTIL,$(1)) $(if $(call PROG_UTIL,$(1)),tests/progutil.h) $(call PROG_PARTS,$(1)) $(if $(call PROG_PARTS,$(1)),$(basename $(1)).h)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_ALL) -Icore -o $$@ $$< $(call PROG_UTIL,$(1)) $(call PROG_PARTS,$(1)) -lm $$(LDLIBS_ALL)
endef
$(foreach p,$(PROG_SRC),$(eval $(call prog_rule,$(p))))
# A static link that fails is a skip only where there is no static libc
# (the tests that need it say "skip:"); with one, a compile or link error is
# the build's failure, never hidden as a skip.
STATIC_LIBC := $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/libc.a /usr/lib64/libc.a /usr/lib/libc.a))
STATIC_LIBC_OR_FAIL = $(if $(STATIC_LIBC),exit 1,echo "no static libc: $@ not built")
# Test programs linked static too, each with tests/progutil.c: images no
# preload reaches. Plain flags (a sanitizer runtime does not link static);
# without a static libc there are none, and the tests that need them say
# "skip:". static_prog NAME FLAGS makes $(BUILD)/progs/NAME_static.
define static_prog
progs: $(BUILD)/progs/$(1)_static
$(BUILD)/progs/$(1)_static: tests/$(1).c tests/progutil.c tests/progutil.h
	@mkdir -p $$(@D)
	$$(CC) -std=c11 -D_GNU_SOURCE -O2 -static $(2) -o $$@ tests/$(1).c tests/progutil.c -lm || \
	    { rm -f $$@; $$(STATIC_LIBC_OR_FAIL); }
endef
# prog_execstate: t_prog_spawn's "bare" image.
$(eval $(call static_prog,prog_execstate,))
# prog_reach: the client rudp-supervise runs in integration/tests/reach/.
$(eval $(call static_prog,prog_reach,))
# prog_reachgap: the cases the supervised program once told apart
# (integration/tests/reach/t_supervise_gaps.sh), with threads.
$(eval $(call static_prog,prog_reachgap,-pthread))
# prog_reachcalls: the calls the filter reports beyond the set-up ones
# (integration/tests/reach/t_supervise_calls.sh).
$(eval $(call static_prog,prog_reachcalls,-pthread))
# prog_dialstorm: Go's dial storm at a low fd limit
# (integration/tests/reach/t_supervise_dialstorm.sh).
$(eval $(call static_prog,prog_dialstorm,-pthread))
# prog_reconnect: connect() again, connect(AF_UNSPEC) as Linux's
# (integration/tests/reach/t_supervise_reconnect.sh).
$(eval $(call static_prog,prog_reconnect,))
# The preload's test programs linked static, run over kernel TCP and then
# under rudp-supervise by integration/tests/reach/t_supervise_battery.sh
# (a supervised program tells no difference the preload does not). Those
# that use progutil link it.
SUP_BATTERY := prog_accepters prog_acceptorder prog_acceptq prog_clonevm prog_connopts \
    prog_epollpre prog_fdlimit prog_keeper prog_keeperhand prog_options prog_outq \
    prog_peerclose prog_peerreset prog_pktinfo prog_prefork prog_relisten prog_restart \
    prog_reuseport prog_sendaddr prog_sigdeath prog_signals prog_smallstack \
    prog_sockopts prog_sysclose prog_threads prog_writeq prog_xgroup prog_endings
progs: $(addprefix $(BUILD)/progs/static/,$(SUP_BATTERY))
$(BUILD)/progs/static/%: tests/%.c tests/progutil.c tests/progutil.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -static -pthread -o $@ $< \
	    $$(grep -q '"progutil.h"' $< && echo tests/progutil.c) -lm || \
	    { rm -f $@; $(STATIC_LIBC_OR_FAIL); }
# Programs that call libsodium themselves link it too; those that call the
# core's packet protection (integration/bench/cryptocost.c times core/aead.c
# itself, with the shim's OpenSSL backend; integration/bench/ceiling.c
# drives the core in its own thread) link the core's library, that backend
# and what they need.
PROG_WITH_SODIUM := $(shell grep -l '<sodium.h>' $(PROG_SRC))
$(addprefix $(BUILD)/progs/,$(notdir $(basename $(PROG_WITH_SODIUM)))): LDLIBS_ALL += -lsodium
PROG_WITH_CORE := $(addprefix $(BUILD)/progs/,$(notdir $(basename $(shell grep -l '"aead.h"\|"rudp.h"' $(PROG_SRC)))))
$(PROG_WITH_CORE): $(CORE_LIB) $(AEAD_OPENSSL)
$(PROG_WITH_CORE): LDLIBS_ALL += $(AEAD_OPENSSL) $(CORE_LIB) $(LDLIBS_CORE) -ldl -lm

# rudp-stat is plain C like the programs (without -MMD: it includes only
# system headers, and build/bin/ holds the tools alone); the other tools are
# copied, to a temporary name first: a test running build/bin/rudp-run
# meanwhile reads the old file or the new one, never half of it.
$(BUILD)/bin/rudp-stat: tools/rudp-stat.c
	@mkdir -p $(@D)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS_ALL)) -o $@ $< $(LDLIBS_ALL)
# rudp-supervise, the supervisor rudp-run runs a static or Go program under
# (docs/reach.md), plain C as rudp-stat, from the files of
# tools/supervise/ (their one header, supervise.h, says which does what).
SUPERVISE_BIN := $(BUILD)/bin/rudp-supervise
SUPERVISE_SRC := $(wildcard tools/supervise/*.c)
$(SUPERVISE_BIN): $(SUPERVISE_SRC) $(wildcard tools/supervise/*.h) shim/state/front.h
	@mkdir -p $(@D)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS_ALL)) -o $@ $(SUPERVISE_SRC) $(LDLIBS_ALL)
$(TOOL_COPY): $(BUILD)/bin/%: tools/%
	@mkdir -p $(@D)
	cp -f $< $@.tmp && mv -f $@.tmp $@

deps-build:
	@integration/deps.sh build

# First contact: a plain `make` on a new machine installs what the build
# needs, as make test and make demo do. Checked here by the files
# themselves, so with everything present it costs no dpkg run (and a
# sanitizer build's sub-make, after its parent ran deps.sh, none either);
# when something is missing every object waits for deps.sh, which installs
# the packages as root or stops with one line naming the command.
DEPS_FILES := /usr/include/stdio.h /usr/include/uthash.h /usr/include/criterion/criterion.h \
              /usr/include/sodium.h /usr/include/openssl/evp.h
DEPS_MISSING := $(filter-out $(wildcard $(DEPS_FILES)),$(DEPS_FILES)) \
                $(shell command -v $(CC) >/dev/null 2>&1 || echo $(CC))
ifneq ($(strip $(DEPS_MISSING)),)
$(CORE_OBJ) $(SHIM_OBJ) $(UNIT_OBJ) $(PROG_BIN) $(BUILD)/bin/rudp-stat $(SUPERVISE_BIN): | deps-build
endif

# --- shim tests: unit tests of shim code, the programs' table --------------
# tests/shim/test_<module>.c: Criterion tests of shim/'s own modules, one
# binary of their own (build/tests/shim_unit), without LD_PRELOAD and
# without librudp_shim.so: the shim's objects reach it through an archive,
# so the binary takes only the objects its calls need. interpose/ stays out
# of the archive: its objects define socket(), close(), read(), write()...
# and would interpose the test program itself, Criterion's own pipes among
# them. tests/shim/lib_shim.c starts each test from a known state
# (tests/shim/shimtest.h says which). Its sources see shim/ (-Ishim) as
# the layers do, through each layer's public header.
SHIM_UNIT_SRC := $(wildcard tests/shim/test_*.c) $(wildcard tests/shim/lib_*.c)
SHIM_UNIT_OBJ := $(SHIM_UNIT_SRC:%.c=$(BUILD)/%.o)
SHIM_UNIT_BIN := $(BUILD)/tests/shim_unit
SHIM_UNIT_LIB := $(BUILD)/tests/shim/libshim_units.a
SHIM_UNIT_LIB_OBJ := $(filter-out $(BUILD)/shim/interpose/%,$(SHIM_OBJ))

all: $(SHIM_UNIT_BIN)

$(SHIM_UNIT_OBJ): CFLAGS_ALL += -Ishim

$(SHIM_UNIT_LIB): $(SHIM_UNIT_LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(SHIM_UNIT_BIN): $(SHIM_UNIT_OBJ) $(SHIM_UNIT_LIB) $(CORE_LIB)
	$(CC) -o $@ $(SHIM_UNIT_OBJ) $(SHIM_UNIT_LIB) $(CORE_LIB) -lcriterion -ldl \
	    $(LDLIBS_CORE) $(LDLIBS_ALL)

ifneq ($(strip $(DEPS_MISSING)),)
$(SHIM_UNIT_OBJ): | deps-build
endif
-include $(SHIM_UNIT_OBJ:.o=.d)

# tests/supervise/test_<module>.c: Criterion tests of rudp-supervise's
# parts that need no program under it, one binary of their own
# (build/tests/supervise_unit): the filter's decisions (filter.c) for
# both architectures, its BPF run by an interpreter over recorded
# seccomp_data.
SUP_UNIT_SRC := $(wildcard tests/supervise/test_*.c)
SUP_UNIT_BIN := $(BUILD)/tests/supervise_unit
all: $(SUP_UNIT_BIN)
$(SUP_UNIT_BIN): $(SUP_UNIT_SRC) tools/supervise/filter.c tools/supervise/filter.h tests/cr_gt.h
	@mkdir -p $(@D)
	$(CC) $(filter-out -MMD -MP,$(CFLAGS_ALL)) -include tests/cr_gt.h -Itools/supervise -o $@ $(SUP_UNIT_SRC) \
	    tools/supervise/filter.c -lcriterion $(LDLIBS_ALL)

# A shim test's program (tests/prog_*.c) and the scripts that run it
# (integration/**/*.sh), side by side in tests/progs.table; make layers
# fails when a program is run by no script or the table is stale
# (tests/check_progs.sh --write makes it again).
.PHONY: check-progs
layers: check-progs
check-progs:
	@tests/check_progs.sh

# --- tests -----------------------------------------------------------------

# The build on every core (2 here: 152 s one at a time, about 90 s so);
# the 20-minute budget of make test is mostly the integration tests'.
# Every package a test installs is installed first: tests that run in a
# network namespace of their own (apart_netns) cannot reach a mirror, and
# tests in parallel lanes would meet each other's dpkg lock.
test:
	@integration/deps.sh build test deb compat battery bench
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@$(MAKE) --no-print-directory check-settings
	@$(MAKE) --no-print-directory layers
	@$(MAKE) --no-print-directory unit-test
	@$(MAKE) --no-print-directory integration-test

unit-test: $(UNIT_BIN) $(SHIM_UNIT_BIN) $(SUP_UNIT_BIN) $(CORE_ALONE)
	$(CORE_ALONE)
	$(UNIT_BIN) --short-filename
	$(SHIM_UNIT_BIN) --short-filename
	$(SUP_UNIT_BIN) --short-filename

integration-test: all
	@if [ -x integration/run.sh ]; then integration/run.sh; \
	 else echo "0 passed, 0 failed, 0 skipped"; fi

# shim/'s layers (folders, shim/base/base.h): no include of another layer's
# private header, directly or through the headers a file includes (nor from
# tests/ or tools/), no symbol of a higher layer (nm), but the known ones
# listed in tests/layers.allow; prints what each layer uses. Then core's
# names and funclen.
layers: $(SHIM_OBJ) $(CORE_OBJ) $(CORE_LIB)
	@tests/check_layers.sh $(BUILD)
	@tests/check_core_names.sh $(BUILD)
	@tests/check_funclen.sh

# No function of shim/ or tools/supervise/ over 150 lines, measured from its
# "{" at column 0 to its "}" there (tests/check_funclen.sh): a longer one is
# split into stages, each a static function with a name.
funclen:
	@tests/check_funclen.sh

check-exports: $(SHIM_SO)
	tests/check_exports.sh $(SHIM_SO)

check-tls: $(SHIM_SO)
	tests/check_tls.sh $(SHIM_SO) 1024

# The settings' one list (known_vars in shim/config.c) against what
# librudp_shim(7), rudp-run(1) and rudp-run --help describe.
check-settings: $(BUILD)/bin/rudp-run
	tests/check_settings.sh $(BUILD)/bin/rudp-run

# The core's layering from its objects' symbols (tests/check_core_layers.sh):
# no two core objects call each other (but the pairs it lists), the
# protocol reaches core/cc/ only through cc.c, the controllers call nothing
# of the protocol. `make layers` runs it with the shim's check. With it,
# the core's names (tests/check_core_names.sh): every global symbol of
# libcore.a is declared in core/rudp.h or named rudp__ (internal).
LAYERS_CORE := tests/check_core_layers.sh $(BUILD)
layers-core: $(CORE_OBJ) $(CORE_LIB)
	@$(LAYERS_CORE)
	@tests/check_core_names.sh $(BUILD)

# --- sanitizers ------------------------------------------------------------

SAN_ASAN  := -fsanitize=address,undefined -fno-sanitize-recover=all
SAN_UBSAN := -fsanitize=undefined -fno-sanitize-recover=all
SAN_TSAN  := -fsanitize=thread

# The ASan run also needs the regular shim: curl, which deadlocks with
# libasan preloaded, runs under it (integration/lib/lib.sh).
asan:
	@integration/deps.sh build test
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory BUILD=build/asan OPT=-O1 SAN="$(SAN_ASAN)" all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    build/asan/tests/unit --short-filename
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    build/asan/tests/shim_unit --short-filename
	@if [ -x integration/run.sh ]; then RUDP_SHIM_BUILD=build/asan integration/run.sh; fi

ubsan:
	@integration/deps.sh build test
	$(MAKE) --no-print-directory BUILD=build/ubsan OPT=-O1 SAN="$(SAN_UBSAN)" all
	build/ubsan/tests/unit --short-filename
	build/ubsan/tests/shim_unit --short-filename

# The core is single-threaded by design (one engine thread owns it); what
# has threads is the shim, so make tsan runs the multi-threaded client test
# under the ThreadSanitizer shim. (Criterion itself cannot start under TSan:
# its inheritable arena wants address space TSan reserves.)
tsan:
	@integration/deps.sh build test
	$(MAKE) --no-print-directory BUILD=build/tsan OPT=-O1 SAN="$(SAN_TSAN)" shim progs
	integration/tsan.sh build/tsan

# --- fuzzing ---------------------------------------------------------------

FUZZ_TIME ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Icore \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(addprefix build/fuzz/,$(notdir $(basename $(FUZZ_SRC))))

build/fuzz/%: tests/%.c tests/fuzz.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIBS) $(CORE_SRC) $(LDLIBS_CORE)

# fuzz_keyed is fuzz_conn's script against keyed contexts. Both link the
# builder of the datagrams they inject, tests/lib_fuzzconn.c (a tests/lib_*.c,
# not a target: the unit tests link it too, for test_fuzzregress.c).
build/fuzz/fuzz_keyed: tests/fuzz_conn.c
build/fuzz/fuzz_conn build/fuzz/fuzz_keyed: tests/lib_fuzzconn.c tests/lib_fuzzconn.h
build/fuzz/fuzz_conn build/fuzz/fuzz_keyed: FUZZ_LIBS := tests/lib_fuzzconn.c

fuzz:
	@integration/deps.sh build fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@total=0; for f in $(FUZZ_BIN); do \
	    mkdir -p build/fuzz/corpus-$$(basename $$f); \
	    echo "== $$f for $(FUZZ_TIME)s"; \
	    if ! $$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	        build/fuzz/corpus-$$(basename $$f) >build/fuzz/$$(basename $$f).log 2>&1; then \
	        grep -E 'ERROR|SUMMARY|crash-|leak-|timeout-' build/fuzz/$$(basename $$f).log; \
	        echo "FUZZ FAILED: $$f (see build/fuzz/$$(basename $$f).log)"; exit 1; \
	    fi; \
	    n=$$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$$(basename $$f).log); \
	    echo "   $$n executions, no crash"; total=$$((total + n)); \
	done; echo "fuzz: $$total executions in all, no crash"

# --- demo / bench / install -------------------------------------------------

demo:
	@integration/deps.sh build test
	@$(MAKE) --no-print-directory all
	integration/demo.sh

bench:
	@integration/deps.sh build test bench
	@$(MAKE) --no-print-directory all
	integration/bench/run.sh

# make bench-docs [BENCH_OUT=DIR]: that run's table (its commit, date and
# machine in its header) into integration/bench/README.md's generated block.
bench-docs:
	integration/bench/docs.sh $(BENCH_OUT)

# make install [PREFIX=/usr/local] [DESTDIR=/staging] [LIBDIR=PREFIX/lib];
# make uninstall with the same PREFIX, DESTDIR and LIBDIR removes exactly
# the files install put there.
#
# The library goes in without its debug info (objcopy --strip-debug: the
# symbol table stays, so backtraces still name functions); the debug info
# goes to lib/.debug/librudp_shim.so.debug beside it, named by a
# .gnu_debuglink (file name + CRC) in the library. Why that place: gdb,
# valgrind and elfutils (perf, eu-stack) all look for a debuglink file in
# the .debug/ subdirectory of the library's own directory, whatever PREFIX
# is; /usr/lib/debug/.build-id/ (Debian's layout) lies outside PREFIX, and
# PREFIX/lib/debug/ is searched only by a gdb configured with that prefix.
# rudp-run finds the library as ../lib/librudp_shim.so from its own
# directory, or as ../lib/rudp-shim/librudp_shim.so (LIBDIR=/usr/lib/rudp-shim,
# the Debian package's: a directory of its own, as Debian Policy 10.2 asks
# for a shared object no program links against; it has no SONAME). mandb
# runs (quietly, if present, not for a DESTDIR staging) so that
# `man rudp-run` works at once, but only for a man directory of the
# system's configuration (manpath -g), whose index lives in /var/cache/man:
# elsewhere it would leave an index.db inside PREFIX that uninstall did not
# install, and man finds the pages there without one (a PREFIX/bin in PATH
# brings PREFIX/share/man into man's path).
MANDB_UPDATE = if [ -z "$(DESTDIR)" ] && command -v mandb >/dev/null 2>&1 && \
	    manpath -g 2>/dev/null | tr : '\n' | grep -qx '$(PREFIX)/share/man'; then \
	    mandb -q $(PREFIX)/share/man 2>/dev/null || true; fi
INST_BIN  := $(DESTDIR)$(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib
INST_LIB  := $(DESTDIR)$(LIBDIR)
INST_DBG  := $(INST_LIB)/.debug
INST_MAN  := $(DESTDIR)$(PREFIX)/share/man
INST_DATA := $(DESTDIR)$(PREFIX)/share/librudp_shim
# The tools as make left them in $(BUILD)/bin/, their pages from man/.
MAN_PAGES := man/rudp-run.1 man/rudp-supervise.1 man/rudp-stat.1 man/rudp-plot.1 \
             man/librudp_shim.7

# SPLIT_DEBUG=0 installs the library as built, debug info and all, and no
# lib/.debug/: for a packager whose own tools split it (make deb: dh_strip
# moves it to the -dbgsym package, found by build ID).
SPLIT_DEBUG ?= 1
install: $(SHIM_SO) $(TOOL_BIN)
	install -d $(INST_BIN) $(INST_LIB) $(INST_MAN)/man1 $(INST_MAN)/man7 $(INST_DATA)
ifeq ($(SPLIT_DEBUG),0)
	install -m 0644 $(SHIM_SO) $(INST_LIB)/librudp_shim.so.tmp
else
	install -d $(INST_DBG)
	objcopy --only-keep-debug $(SHIM_SO) $(INST_DBG)/librudp_shim.so.debug
	chmod 0644 $(INST_DBG)/librudp_shim.so.debug
	cd $(INST_DBG) && objcopy --strip-debug --add-gnu-debuglink=librudp_shim.so.debug \
	    $(abspath $(SHIM_SO)) $(abspath $(INST_LIB))/librudp_shim.so.tmp
	chmod 0644 $(INST_LIB)/librudp_shim.so.tmp
endif
	mv -f $(INST_LIB)/librudp_shim.so.tmp $(INST_LIB)/librudp_shim.so
	install -m 0755 $(TOOL_EXE) $(INST_BIN)/
	install -m 0644 $(filter %.1,$(MAN_PAGES)) $(INST_MAN)/man1/
	install -m 0644 $(filter %.7,$(MAN_PAGES)) $(INST_MAN)/man7/
	install -m 0644 $(TOOL_DATA) $(INST_DATA)/
	@$(MANDB_UPDATE)

uninstall:
	rm -f $(addprefix $(INST_BIN)/,$(notdir $(TOOL_EXE))) \
	    $(INST_LIB)/librudp_shim.so $(INST_DBG)/librudp_shim.so.debug \
	    $(addprefix $(INST_MAN)/man1/,$(notdir $(filter %.1,$(MAN_PAGES)))) \
	    $(addprefix $(INST_MAN)/man7/,$(notdir $(filter %.7,$(MAN_PAGES)))) \
	    $(addprefix $(INST_DATA)/,$(notdir $(TOOL_DATA)))
	rmdir $(INST_DATA) 2>/dev/null || true
	rmdir $(INST_DBG) 2>/dev/null || true
	$(if $(filter-out $(PREFIX)/lib,$(LIBDIR)),rmdir $(INST_LIB) 2>/dev/null || true)
	@$(MANDB_UPDATE)

# --- aarch64 -------------------------------------------------------------------
# make aarch64: the same rules with Debian's cross compiler into
# build/aarch64/ (the core, the shim, rudp-supervise, rudp-stat, the unit
# tests), then integration/aarch64/test.sh runs the unit tests and a smoke
# test (nc and a Python echo over rudp, aarch64 programs with the aarch64
# shim preloaded) under qemu-user. One target, build and test: a cross
# build no one runs proves little. The arm64 packages that cannot be
# installed beside the host's (Criterion, nc, python3.11) are unpacked
# into build/aarch64/root/. Not part of make test: a few minutes on two
# cores, most of them the unit tests under emulation.
A64_BUILD := build/aarch64
A64_LIBS  := $(A64_BUILD)/root/usr/lib/aarch64-linux-gnu
aarch64:
	@integration/deps.sh build aarch64
	@integration/aarch64/root.sh $(A64_BUILD)/root
	@$(MAKE) --no-print-directory BUILD=$(A64_BUILD) CC=aarch64-linux-gnu-gcc \
	    LDDIRS="-L$(A64_LIBS) -Wl,-rpath-link,$(A64_LIBS)" \
	    lib shim tools $(A64_BUILD)/tests/unit $(A64_BUILD)/tests/shim_unit \
	    $(A64_BUILD)/tests/supervise_unit $(A64_BUILD)/tests/core_alone
	integration/aarch64/test.sh $(A64_BUILD)

# --- Debian package ----------------------------------------------------------
# make deb [DEB_VERSION=...] [DEB_DIR=...]: the package rudp-shim (and its
# rudp-shim-dbgsym) built by dpkg-buildpackage and debhelper from
# packaging/debian/, in DEB_DIR (build/deb/): the .deb files, .buildinfo and
# .changes. The version is VERSION unless DEB_VERSION says otherwise (the
# upgrade test builds a higher one). The checkout gets no file: the package
# directory, DEB_DIR/rudp-shim-VERSION/, holds debian/ and its changelog,
# written here, and goes once the package is built; its rules take this
# build and make install's file list (PREFIX=/usr). The changelog's date is
# the last commit's, so two builds of one commit are alike.
DEB_VERSION ?= $(VERSION)
DEB_DIR     ?= $(BUILD)/deb
DEB_TREE    := $(DEB_DIR)/rudp-shim-$(DEB_VERSION)
DEB_DATE     = $$(date -R -d @$$(git log -1 --format=%ct 2>/dev/null || date +%s))

deb:
	@integration/deps.sh build deb
	@$(MAKE) --no-print-directory shim tools
	rm -rf $(DEB_TREE)
	mkdir -p $(DEB_TREE)
	cp -R packaging/debian $(DEB_TREE)/debian
	{ echo "rudp-shim ($(DEB_VERSION)) unstable; urgency=medium"; echo; \
	  echo "  * librudp_shim $(VERSION), commit $(COMMIT), by make deb."; echo; \
	  echo " -- $$(sed -n 's/^Maintainer: //p' packaging/debian/control)  $(DEB_DATE)"; \
	} >$(DEB_TREE)/debian/changelog
	cd $(DEB_TREE) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL RUDP_TOP=$(CURDIR) \
	    RUDP_BUILD=$(abspath $(BUILD)) dpkg-buildpackage -b -us -uc
	rm -rf $(DEB_TREE)
	@ls -1 $(DEB_DIR)/rudp-shim*_$(DEB_VERSION)_*

clean:
	rm -rf build librudp_shim.so

-include $(CORE_OBJ:.o=.d) $(SHIM_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
