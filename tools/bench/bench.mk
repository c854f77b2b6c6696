# Benchmarks; included from the top-level Makefile (BUILD, SKEL, CC, CFLAGS,
# DP_LDLIBS, CLANG, BPF_CFLAGS and BPFTOOL come from there).
#
# pktcost times each canaryd program path with BPF_PROG_TEST_RUN next to
# empty programs of the same types, so it needs those compiled too. What it
# shares with scale (scale.mk) is in tools/bench/bench_common.h.

$(BUILD)/empty.bpf.o: tests/bpf/empty.bpf.c
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/empty.skel.h: $(BUILD)/empty.bpf.o
	$(BPFTOOL) gen skeleton $< name empty > $@.tmp && mv $@.tmp $@

$(BUILD)/pktcost: tools/bench/pktcost.c tools/bench/bench_common.h tests/bpf/fixture.h \
		  tests/bpf/pkt.h $(wildcard headers/*.h) $(SKEL) $(BUILD)/empty.skel.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -Itests/bpf -o $@ $< $(DP_LDLIBS)
