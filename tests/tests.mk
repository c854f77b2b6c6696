# Test targets; included from the top-level Makefile.
# make test = unit tests under ASan+UBSan, the BPF suites, then the labs.

TEST_BUILD  := $(BUILD)/tests
SAN_FLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TEST_LIBS   := -lcmocka $(LDLIBS)

test: test-build
	@tests/run-all.sh

test-unit: test-build
	@tests/run-all.sh unit

test-bpf: test-build
	@tests/run-all.sh bpf

test-e2e: all lab $(BUILD)/reordered.bpf.o
	@tests/run-all.sh e2e

test-deploy: all lab
	@tests/run-all.sh deploy

test-docs: all lab
	@tests/run-all.sh docs

# Unit tests: the loader library rebuilt with sanitizers, one binary per file.
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(TEST_BUILD)/unit/%,$(wildcard tests/unit/test_*.c))
SAN_OBJS    := $(patsubst userspace/%.c,$(TEST_BUILD)/san/%.o,$(LIB_SRCS))

$(TEST_BUILD)/san/%.o: userspace/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) -c $< -o $@

# The same three libraries, as archives: a test takes in only the objects
# it calls, and --as-needed keeps only the shared libraries those use.
SAN_DP_LIB      := $(TEST_BUILD)/san/libcanary-dp.a
SAN_ROLLOUT_LIB := $(TEST_BUILD)/san/libcanary-rollout.a
SAN_AGENT_LIB   := $(TEST_BUILD)/san/libcanary-agent.a
SAN_LIBS        := $(SAN_AGENT_LIB) $(SAN_ROLLOUT_LIB) $(SAN_DP_LIB)
$(SAN_DP_LIB): $(patsubst userspace/%.c,$(TEST_BUILD)/san/%.o,$(DP_SRCS))
$(SAN_ROLLOUT_LIB): $(patsubst userspace/%.c,$(TEST_BUILD)/san/%.o,$(ROLLOUT_SRCS))
$(SAN_AGENT_LIB): $(patsubst userspace/%.c,$(TEST_BUILD)/san/%.o,$(AGENT_LIB_SRCS))
$(SAN_LIBS):
	rm -f $@ && $(AR) rcs $@ $^

$(TEST_BUILD)/unit/%: tests/unit/%.c $(SAN_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) -o $@ $(filter %.c %.a,$^) -Wl,--as-needed $(TEST_LIBS) -lm

# libcanary-testfix.a (tests/lib/): what the BPF suite, the packet fuzzer and
# the benchmarks share to drive the real skeleton (fixture.c: load, pins,
# test runs, the skip rule; pkt.h: the packet builder). Built as is for the
# fuzzer and the benchmarks, and with sanitizers for the BPF suite.
TESTFIX_SRCS    := $(wildcard tests/lib/*.c)
TESTFIX_HDRS    := $(wildcard tests/lib/*.h)
TESTFIX_LIB     := $(BUILD)/libcanary-testfix.a
SAN_TESTFIX_LIB := $(TEST_BUILD)/san/libcanary-testfix.a

$(BUILD)/obj/testlib/%.o: tests/lib/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

$(TEST_BUILD)/san/testlib/%.o: tests/lib/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) -c $< -o $@

$(TESTFIX_LIB): $(patsubst tests/lib/%.c,$(BUILD)/obj/testlib/%.o,$(TESTFIX_SRCS))
$(SAN_TESTFIX_LIB): $(patsubst tests/lib/%.c,$(TEST_BUILD)/san/testlib/%.o,$(TESTFIX_SRCS))
$(TESTFIX_LIB) $(SAN_TESTFIX_LIB):
	rm -f $@ && $(AR) rcs $@ $^

# The BPF suite drives the real programs through BPF_PROG_TEST_RUN.
# It reads the maps through the loader library, as the agent does. One
# binary: the harness and one file of cases per feature (tests/bpf/dp_*.c,
# listed in DP_SUITES of tests/bpf/harness.h).
BPF_DP_SRCS := tests/bpf/harness.c $(wildcard tests/bpf/dp_*.c)
BPF_DP_OBJS := $(patsubst tests/bpf/%.c,$(TEST_BUILD)/bpf/%.o,$(BPF_DP_SRCS))

$(TEST_BUILD)/bpf/%.o: tests/bpf/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) -Itests/lib -c $< -o $@

# A dp_NAME.c missing from DP_SUITES would link and never run: refuse it.
$(TEST_BUILD)/test_bpf: $(BPF_DP_OBJS) $(SAN_TESTFIX_LIB) $(SAN_DP_LIB)
	@for f in $(wildcard tests/bpf/dp_*.c); do n=$${f#tests/bpf/dp_}; n=$${n%.c}; \
		grep -q "X($$n)" tests/bpf/harness.h || \
		{ echo "$$f: add X($$n) to DP_SUITES in tests/bpf/harness.h" >&2; exit 1; }; done
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $(filter %.o %.a,$^) -lcmocka $(DP_LDLIBS)
	@rm -f $@.d

# The suite was one file, test_datapath.c, compiled and linked in one step:
# a build directory from then has a test_bpf.d that still names it.
tests/bpf/test_datapath.c: ;

BPF_TESTS   := $(if $(wildcard tests/bpf/harness.c),$(TEST_BUILD)/test_bpf)

# A services map with two same-size fields swapped: canaryd must refuse its pin.
$(BUILD)/reordered.bpf.o: tests/bpf/reordered.bpf.c | depcheck
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

test-build: all lab $(UNIT_TESTS) $(BPF_TESTS) $(BUILD)/reordered.bpf.o $(BUILD)/kubewatch \
	    $(BUILD)/pktcost

# Keep the sanitizer objects between runs (make would delete them as intermediates).
.SECONDARY: $(SAN_OBJS) $(BPF_DP_OBJS)

# The long tests (agent stopped for 60 s, ...): at most 30 minutes.
soak: all lab
	@tests/soak/run.sh

# kubectl canary's command line lives with canaryctl (tools/canaryctl/).
$(TEST_BUILD)/unit/test_kubeplugin: tools/canaryctl/plugin_args.c tools/canaryctl/duration.c
