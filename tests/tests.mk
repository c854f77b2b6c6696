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
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) -o $@ $^ -Wl,--as-needed $(TEST_LIBS) -lm

# The BPF suite drives the real programs through BPF_PROG_TEST_RUN.
# It reads the maps through the loader library, as the agent does.
$(TEST_BUILD)/test_bpf: tests/bpf/test_datapath.c $(SKEL) $(SAN_DP_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $(DEPFLAGS) -o $@ $< $(SAN_DP_LIB) -lcmocka $(DP_LDLIBS)

BPF_TESTS   := $(if $(wildcard tests/bpf/test_datapath.c),$(TEST_BUILD)/test_bpf)

# A services map with two same-size fields swapped: canaryd must refuse its pin.
$(BUILD)/reordered.bpf.o: tests/bpf/reordered.bpf.c | depcheck
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

test-build: all lab $(UNIT_TESTS) $(BPF_TESTS) $(BUILD)/reordered.bpf.o $(BUILD)/kubewatch

# Keep the sanitizer objects between runs (make would delete them as intermediates).
.SECONDARY: $(SAN_OBJS)

# The long tests (agent stopped for 60 s, ...): at most 30 minutes.
soak: all lab
	@tests/soak/run.sh
