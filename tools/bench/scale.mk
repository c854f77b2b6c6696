# scale: conntrack at 100k / 1M flows (map memory, fill, the agent's walk,
# per-packet cost at that fill). Included from the top-level Makefile after
# bench.mk (BUILD, SKEL, CC, CFLAGS, DP_LIB and DP_LDLIBS come from there; the
# empty programs' skeleton is bench.mk's). It links the data path library to
# time the agent's own conntrack walk (dp_flow_count). Its harness is shared
# with pktcost in tools/bench/bench_common.h, which builds on the tests' fixture
# library (tests/lib/, libcanary-testfix.a).

$(BUILD)/scale: tools/bench/scale.c tools/bench/bench_common.h $(TESTFIX_HDRS) $(TESTFIX_LIB) \
		$(wildcard headers/*.h) $(SKEL) $(BUILD)/empty.skel.h $(DP_LIB)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -Itests/lib -o $@ $< $(TESTFIX_LIB) $(DP_LIB) $(DP_LDLIBS)
