# canaryd — one entry point: make deps (once, as root), then make, make test,
# make demo, make bench, make install. Outputs go to build/. See README.md.

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
# Each object lists the headers it read in a .d file next to it (included at
# the end), so a header change rebuilds only what includes it.
DEPFLAGS    := -MMD -MP
LDLIBS      := -lbpf -lelf -lz -ljansson -lyaml -lmicrohttpd -lcurl -lseccomp -lm -lpthread

# canary: the data path. ct_count: the agent's O(1) conntrack count, apart so
# that a kernel without the kfunc it calls still loads the data path.
# sock: host-local clients, split at connect() (cgroup programs).
BPF_SRC     := bpf/canary.bpf.c bpf/ct_count.bpf.c bpf/sock.bpf.c
BPF_OBJ     := $(patsubst bpf/%.c,$(BUILD)/%.o,$(BPF_SRC))
SKEL        := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRC))

# User-space libraries by concern (docs/architecture.md, "Module map"). A
# library calls only those below it: agent -> rollout -> dp.
#   dp:      the data path's loader and attach, and the parsing, logging and
#            HTTP body helpers every program shares (canaryctl's base)
#   rollout: the Rollout schema, analysis, the state machine and what it
#            decides (state files, evidence, delivery, notifications, plans)
#   agent:   the daemon's own modules: API, metrics, workers, fleet, sandbox
DP_SRCS      := userspace/dataplane.c userspace/attach.c userspace/netparse.c \
                userspace/stats.c userspace/log.c userspace/utf8text.c \
                userspace/httpbody.c userspace/base64.c userspace/linkwatch.c userspace/btflayout.c \
                userspace/ctlifetimes.c userspace/svcindex.c \
                userspace/hostsock.c
ROLLOUT_SRCS := userspace/config.c userspace/config_load.c userspace/yamltree.c \
                userspace/metric_kind.c userspace/analysis.c userspace/rollout.c \
                userspace/state.c userspace/evidence.c userspace/delivery.c \
                userspace/notify.c userspace/httppost.c userspace/traffic.c \
                userspace/plan.c userspace/fleet_rules.c
AGENT_SRCS   := userspace/agent.c userspace/dpops.c userspace/dpwatch.c userspace/report.c userspace/api.c userspace/hooks.c \
                userspace/metrics.c userspace/configwatch.c userspace/promquery.c \
                userspace/external.c userspace/caps.c userspace/healthcheck.c \
                userspace/worker.c userspace/etcd.c userspace/coord_etcd.c userspace/fleet.c \
                userspace/conndeadline.c userspace/probe.c userspace/sandbox.c \
                userspace/secretfile.c userspace/siphash.c userspace/seedsecret.c \
                 userspace/kube.c userspace/kubeconfig.c userspace/kubeexec.c userspace/kubeeps.c \
                 userspace/kubesvc.c \
                 userspace/coord_kube.c userspace/kuberollout.c userspace/kubespecs.c
# Every library source. A file added here and to no list above goes into
# the agent's library.
LIB_SRCS    := $(DP_SRCS) $(ROLLOUT_SRCS) $(AGENT_SRCS)
LIB_OBJS    := $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
AGENT_LIB_SRCS := $(filter-out $(DP_SRCS) $(ROLLOUT_SRCS),$(LIB_SRCS))

DP_LIB      := $(BUILD)/libcanary-dp.a
ROLLOUT_LIB := $(BUILD)/libcanary-rollout.a
AGENT_LIB   := $(BUILD)/libcanary-agent.a
# Link order: a library before the ones it calls.
LIBS        := $(AGENT_LIB) $(ROLLOUT_LIB) $(DP_LIB)

# What each library needs at link time; a program takes those of the
# libraries it links.
DP_LDLIBS      := -lbpf -lelf -lz -ljansson -lpthread
ROLLOUT_LDLIBS := -lyaml -lcurl -ljansson -lm -lpthread
AGENT_LDLIBS   := -lmicrohttpd -lcurl -lseccomp -ljansson -lz -lm -lpthread
# canaryctl links the rollout library (the config module reads a Rollout's
# spec for kubectl canary) and, of the agent library, only what the archive
# gives it: the Kubernetes client, kubeconfig and the Rollout's status.
CTL_LDLIBS     := $(ROLLOUT_LDLIBS) $(DP_LDLIBS)

PROGS       := $(BUILD)/canaryd $(BUILD)/canaryctl
# The lab's test server and load generator: for the labs, the demo and the
# benchmarks (make lab), not installed.
LAB_PROGS   := $(BUILD)/labsrv $(BUILD)/labload
VERSION_H   := $(BUILD)/version.h

.PHONY: all deps depcheck lab check-layers test test-build test-unit test-bpf test-e2e test-deploy test-docs soak demo demo-clean bench bench-e2e install clean format lint tidy FORCE

.DEFAULT_GOAL := all

all: $(PROGS) $(BUILD)/kubectl-canary

lab: $(LAB_PROGS)

# Installing packages is explicit: make deps (apt-get, as root). A build only
# checks for the tools and headers and says what is missing.
deps:
	tools/install-deps.sh

DEP_TOOLS   := $(CLANG) $(BPFTOOL)
DEP_HEADERS := bpf/libbpf.h yaml.h microhttpd.h jansson.h zlib.h seccomp.h \
               $(ARCH)-linux-gnu/curl/curl.h
depcheck:
	@missing=; \
	for t in $(DEP_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	for h in $(DEP_HEADERS); do [ -f /usr/include/$$h ] || missing="$$missing $$h"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing; run: sudo make deps" >&2; exit 1; \
	fi

# The version, from git describe (tools/version.sh), rewritten only when it
# changes so that an unchanged tree rebuilds nothing.
$(VERSION_H): FORCE
	@mkdir -p $(BUILD)
	@tools/version.sh --header > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(BUILD)/%.bpf.o: bpf/%.bpf.c | depcheck
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@

# Keep the objects: bpftool and the runbook load them by hand.
.SECONDARY: $(BPF_OBJ)

# Generated headers come first; after that the .d files know who reads them.
$(BUILD)/obj/%.o: userspace/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

CTL_SRCS    := $(wildcard tools/canaryctl/*.c)
CTL_OBJS    := $(patsubst tools/canaryctl/%.c,$(BUILD)/obj/ctl/%.o,$(CTL_SRCS))

$(BUILD)/obj/ctl/%.o: tools/canaryctl/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

# Each archive is rebuilt from scratch so that a source moved to another
# library leaves no stale member behind.
$(DP_LIB): $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(DP_SRCS))
$(ROLLOUT_LIB): $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(ROLLOUT_SRCS))
$(AGENT_LIB): $(patsubst userspace/%.c,$(BUILD)/obj/%.o,$(AGENT_LIB_SRCS))
$(LIBS):
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/canaryd: $(BUILD)/obj/canaryd.o $(LIBS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# canaryctl works on the pinned maps and talks to the agent's API; as
# kubectl-canary (argv[0]) to the API server: of the agent library it takes
# the Kubernetes client only (the archive links just the members it calls).
$(BUILD)/canaryctl: $(CTL_OBJS) $(LIBS)
	$(CC) $(CFLAGS) -o $@ $^ $(CTL_LDLIBS)

# The kubectl plugin: kubectl finds kubectl-canary on PATH (kubectl canary ...).
$(BUILD)/kubectl-canary: $(BUILD)/canaryctl
	ln -sf canaryctl $@

# kubewatch: the EndpointSlice watcher of userspace/kube.c on its own, for
# debugging and tests/e2e/test_kube_endpoints.sh; not installed.
$(BUILD)/kubewatch: tools/kubewatch/kubewatch.c $(LIBS) | $(VERSION_H)
	$(CC) $(CFLAGS) $(DEPFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(BUILD)/lab%: tools/lab/lab%.c
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O2 -g $(WARN) $(DEPFLAGS) -pthread -o $@ $<

include tests/tests.mk
include tools/bench/bench.mk
include tools/bench/scale.mk
include deploy/install.mk
include tests/fuzz/fuzz.mk

# Benchmarks print figures and ratios; they never pass or fail on speed.
bench: all lab $(BUILD)/pktcost $(BUILD)/scale $(PKTCOST_BASE_DIR)/canary.bpf.o
	@mkdir -p $(BUILD)/bench
	$(BUILD)/pktcost --base $(PKTCOST_BASE_DIR)/canary.bpf.o --json $(BUILD)/bench/pktcost.json
	tools/bench/e2e.sh --json $(BUILD)/bench/e2e.json
	tools/bench/rollback.sh --json $(BUILD)/bench/rollback.json
	tools/bench/scale.sh --json $(BUILD)/bench/scale.json

bench-e2e: all lab
	@mkdir -p $(BUILD)/bench
	tools/bench/e2e.sh --json $(BUILD)/bench/e2e.json

clean:
	rm -rf $(BUILD)

# The headers each object read (DEPFLAGS), wherever under build/ it is.
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The module map's rule: no library calls one above it (agent -> rollout -> dp).
check-layers: $(LIBS)
	tools/check-layers.sh $(BUILD)

lint: $(SKEL) $(VERSION_H) check-layers
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	cppcheck --quiet --error-exitcode=1 --enable=warning,style,performance,portability \
		--inline-suppr -Iheaders -Iuserspace -I$(BUILD) --suppress=missingIncludeSystem \
		--suppress=unknownMacro:userspace/attach.c --suppress=unknownMacro:userspace/dataplane.c \
		--suppress=unknownMacro:tools/bench/primitives.bpf.c \
		userspace tools/canaryctl tools/lab tools/bench tests/unit tests/bpf tests/lib

# make demo DEMO=interactive keeps the lab running afterwards.
demo: all lab
	@DEMO=$(DEMO) tools/demo.sh

# clang-tidy on our own sources. dataplane.c and hostsock.c include
# generated skeletons, whose error path the malloc checker misreads (it
# cannot see that canary__destroy frees what canary__open allocated): that
# one check is off for those files.
SKEL_USERS := userspace/dataplane.c userspace/hostsock.c
TIDY_SRCS := $(filter-out $(SKEL_USERS),$(LIB_SRCS)) userspace/canaryd.c \
             $(CTL_SRCS)
TIDY_ARGS := -- -std=gnu11 -D_GNU_SOURCE -Iheaders -Iuserspace -I$(BUILD)
tidy: $(SKEL) $(VERSION_H)
	clang-tidy --quiet $(TIDY_SRCS) $(TIDY_ARGS)
	clang-tidy --quiet --checks=-clang-analyzer-unix.Malloc $(SKEL_USERS) $(TIDY_ARGS)

# Removes the lab that "make demo DEMO=interactive" leaves running.
demo-clean:
	@LAB_ID=demo bash -c 'source tests/e2e/lib.sh && lab_down && echo "demo lab removed"'
