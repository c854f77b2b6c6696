# canaryd — one entry point: make, make test, make demo, make bench, make install.
# Outputs go to build/. See README.md.

ARCH        := $(shell uname -m)
BUILD       := build
CLANG       ?= clang
CC          ?= gcc
BPFTOOL     ?= bpftool
PREFIX      ?= /usr/local
DESTDIR     ?=

WARN        := -Wall -Wextra -Werror
BPF_CFLAGS  := -O2 -g -target bpf -mcpu=v3 $(WARN) -Iheaders -Ibpf \
               -I/usr/include/$(ARCH)-linux-gnu
CFLAGS      ?= -O2 -g
CFLAGS      += -std=gnu11 $(WARN) -Iheaders -Iuserspace -I$(BUILD) -D_GNU_SOURCE
LDLIBS      := -lbpf -lelf -lz -ljansson -lyaml -lmicrohttpd -lcurl -lseccomp -lm -lpthread

# canary: the data path. ct_count: the agent's O(1) conntrack count, apart so
# that a kernel without the kfunc it calls still loads the data path.
BPF_SRC     := bpf/canary.bpf.c bpf/ct_count.bpf.c
BPF_HDRS    := $(wildcard bpf/lib/*.h) $(wildcard headers/*.h)
BPF_OBJ     := $(patsubst bpf/%.c,$(BUILD)/%.o,$(BPF_SRC))
SKEL        := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRC))

# The loader library: everything the agent and canaryctl share.
LIB_SRCS    := userspace/dataplane.c userspace/attach.c userspace/netparse.c \
               userspace/stats.c userspace/log.c userspace/linkwatch.c \
               userspace/config.c userspace/analysis.c userspace/rollout.c \
               userspace/state.c userspace/evidence.c userspace/delivery.c userspace/notify.c userspace/traffic.c userspace/httppost.c userspace/hooks.c userspace/plan.c userspace/agent.c userspace/report.c userspace/api.c \
               userspace/metrics.c userspace/configwatch.c userspace/promquery.c \
               userspace/httpbody.c userspace/external.c userspace/caps.c userspace/healthcheck.c \
               userspace/worker.c userspace/etcd.c userspace/coord_etcd.c userspace/fleet.c \
               userspace/fleet_rules.c userspace/conndeadline.c userspace/probe.c \
               userspace/sandbox.c userspace/utf8text.c userspace/secretfile.c \
               userspace/siphash.c userspace/seedsecret.c userspace/btflayout.c
LIB_HDRS    := $(wildcard userspace/*.h) $(wildcard headers/*.h)
LIB_OBJS    := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))

PROGS       := $(BUILD)/canaryd $(BUILD)/canaryctl
LAB_PROGS   := $(BUILD)/labsrv $(BUILD)/labload

.PHONY: all deps test test-build test-unit test-bpf test-e2e test-deploy test-docs soak demo demo-clean bench bench-e2e install clean format lint tidy

.DEFAULT_GOAL := all

all: deps $(PROGS) $(LAB_PROGS)

# Runs tools/install-deps.sh once a missing build tool or header is noticed.
DEP_TOOLS   := $(CLANG) $(BPFTOOL)
DEP_HEADERS := bpf/libbpf.h yaml.h cmocka.h microhttpd.h jansson.h zlib.h seccomp.h \
               $(ARCH)-linux-gnu/curl/curl.h
deps: $(BUILD)/.deps
$(BUILD)/.deps: tools/install-deps.sh
	@mkdir -p $(BUILD)
	@missing=0; \
	for t in $(DEP_TOOLS); do command -v $$t >/dev/null || missing=1; done; \
	for h in $(DEP_HEADERS); do [ -f /usr/include/$$h ] || missing=1; done; \
	if [ $$missing = 1 ]; then tools/install-deps.sh; fi
	@touch $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) | deps
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@

# Keep the objects: bpftool and the runbook load them by hand.
.SECONDARY: $(BPF_OBJ)

$(BUILD)/obj/%.o: userspace/%.c $(LIB_HDRS) $(SKEL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

CTL_SRCS    := $(wildcard tools/canaryctl/*.c)
CTL_OBJS    := $(patsubst tools/canaryctl/%.c,$(BUILD)/obj/ctl/%.o,$(CTL_SRCS))

$(BUILD)/obj/ctl/%.o: tools/canaryctl/%.c $(wildcard tools/canaryctl/*.h) $(LIB_HDRS) $(SKEL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/canaryd: $(BUILD)/obj/canaryd.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/canaryctl: $(CTL_OBJS) $(LIB_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/lab%: tools/lab/lab%.c tools/lab/labcommon.h
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) -pthread -o $@ $<

include tests/tests.mk
include tools/bench/bench.mk
include tools/bench/scale.mk
include deploy/install.mk
include tests/fuzz/fuzz.mk

# Benchmarks print figures and ratios; they never pass or fail on speed.
bench: all $(BUILD)/pktcost $(BUILD)/scale
	@mkdir -p $(BUILD)/bench
	$(BUILD)/pktcost --json $(BUILD)/bench/pktcost.json
	tools/bench/e2e.sh --json $(BUILD)/bench/e2e.json
	tools/bench/rollback.sh --json $(BUILD)/bench/rollback.json
	tools/bench/scale.sh --json $(BUILD)/bench/scale.json

bench-e2e: all
	@mkdir -p $(BUILD)/bench
	tools/bench/e2e.sh --json $(BUILD)/bench/e2e.json

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint: $(SKEL)
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
		--inline-suppr -Iheaders -Iuserspace -I$(BUILD) --suppress=missingIncludeSystem \
		--suppress=unknownMacro:userspace/attach.c --suppress=unknownMacro:userspace/dataplane.c \
		userspace tools/canaryctl tools/lab tools/bench tests/unit tests/bpf

# make demo DEMO=interactive keeps the lab running afterwards.
demo: all
	@DEMO=$(DEMO) tools/demo.sh

# clang-tidy on our own sources. dataplane.c includes the generated
# skeleton, whose error path the malloc checker misreads (it cannot see that
# canary__destroy frees what canary__open allocated): that one check is off
# for that one file.
TIDY_SRCS := $(filter-out userspace/dataplane.c,$(LIB_SRCS)) userspace/canaryd.c \
             $(CTL_SRCS)
TIDY_ARGS := -- -std=gnu11 -D_GNU_SOURCE -Iheaders -Iuserspace -I$(BUILD)
tidy: $(SKEL)
	clang-tidy --quiet $(TIDY_SRCS) $(TIDY_ARGS)
	clang-tidy --quiet --checks=-clang-analyzer-unix.Malloc userspace/dataplane.c $(TIDY_ARGS)

# Removes the lab that "make demo DEMO=interactive" leaves running.
demo-clean:
	@LAB_ID=demo bash -c 'source tests/e2e/lib.sh && lab_down && echo "demo lab removed"'
