# Benchmarks; included from the top-level Makefile (BUILD, SKEL, CC, CFLAGS,
# DP_LDLIBS, CLANG, BPF_CFLAGS and BPFTOOL come from there).
#
# pktcost times each canaryd program path with BPF_PROG_TEST_RUN next to
# empty programs of the same types (empty.bpf.c), so it needs those compiled
# too. What it shares with scale (scale.mk) is in tools/bench/bench_common.h;
# both drive the skeleton through the tests' fixture library (tests/tests.mk,
# libcanary-testfix.a).

$(BUILD)/empty.bpf.o: tools/bench/empty.bpf.c
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/empty.skel.h: $(BUILD)/empty.bpf.o
	$(BPFTOOL) gen skeleton $< name empty > $@.tmp && mv $@.tmp $@

# Single operations (a hash lookup, an insert, a helper call, the tc
# rewrite), timed by pktcost next to the paths: the floor under a path.
$(BUILD)/primitives.bpf.o: tools/bench/primitives.bpf.c $(wildcard headers/*.h)
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/primitives.skel.h: $(BUILD)/primitives.bpf.o
	$(BPFTOOL) gen skeleton $< name primitives > $@.tmp && mv $@.tmp $@

$(BUILD)/pktcost: tools/bench/pktcost.c tools/bench/bench_common.h $(TESTFIX_HDRS) \
		  $(TESTFIX_LIB) $(DP_LIB) $(wildcard headers/*.h) $(SKEL) $(BUILD)/empty.skel.h \
		  $(BUILD)/primitives.skel.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -Itests/lib -o $@ $< $(TESTFIX_LIB) $(DP_LIB) $(DP_LDLIBS)

# The programs pktcost compares with (--base): bpf/ and headers/ of revision
# PKTCOST_BASE, built with today's compiler and flags. Rebuilt every time,
# as the revision is a name, not a file make can date.
PKTCOST_BASE ?= 22bb4e3
PKTCOST_BASE_DIR := $(BUILD)/bench/base

$(PKTCOST_BASE_DIR)/canary.bpf.o: FORCE
	@rm -rf $(PKTCOST_BASE_DIR) && mkdir -p $(PKTCOST_BASE_DIR)/src
	git archive $(PKTCOST_BASE) bpf headers | tar -x -C $(PKTCOST_BASE_DIR)/src
	cd $(PKTCOST_BASE_DIR)/src && $(CLANG) $(BPF_CFLAGS) -c bpf/canary.bpf.c -o ../canary.bpf.o
