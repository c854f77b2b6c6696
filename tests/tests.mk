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

test-e2e: all $(BUILD)/reordered.bpf.o
	@tests/run-all.sh e2e

test-deploy: all
	@tests/run-all.sh deploy

test-docs: all
	@tests/run-all.sh docs

# Unit tests: the loader library rebuilt with sanitizers, one binary per file.
UNIT_TESTS  := $(patsubst tests/unit/%.c,$(TEST_BUILD)/unit/%,$(wildcard tests/unit/test_*.c))
SAN_OBJS    := $(patsubst userspace/%.c,$(TEST_BUILD)/san/%.o,$(LIB_SRCS))

$(TEST_BUILD)/san/%.o: userspace/%.c $(LIB_HDRS) $(SKEL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c $< -o $@

$(TEST_BUILD)/unit/%: tests/unit/%.c $(SAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(TEST_LIBS) -lm

# The BPF suite drives the real programs through BPF_PROG_TEST_RUN.
# It reads the maps through the loader library, as the agent does.
TEST_BPF_LIB := $(TEST_BUILD)/san/dataplane.o $(TEST_BUILD)/san/log.o $(TEST_BUILD)/san/utf8text.o \
                $(TEST_BUILD)/san/btflayout.o
$(TEST_BUILD)/test_bpf: tests/bpf/test_datapath.c tests/bpf/fixture.h tests/bpf/pkt.h $(SKEL) \
		$(TEST_BPF_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $< $(TEST_BPF_LIB) $(TEST_LIBS)

BPF_TESTS   := $(if $(wildcard tests/bpf/test_datapath.c),$(TEST_BUILD)/test_bpf)

# A services map with two same-size fields swapped: canaryd must refuse its pin.
$(BUILD)/reordered.bpf.o: tests/bpf/reordered.bpf.c $(BPF_HDRS) | deps
	@mkdir -p $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

test-build: all $(UNIT_TESTS) $(BPF_TESTS) $(BUILD)/reordered.bpf.o

# Keep the sanitizer objects between runs (make would delete them as intermediates).
.SECONDARY: $(SAN_OBJS)

# The long tests (agent stopped for 60 s, ...): at most 30 minutes.
soak: all
	@tests/soak/run.sh
