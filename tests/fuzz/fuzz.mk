# Fuzzing targets; included from the top-level Makefile, which defines BUILD,
# LIB_SRCS, SKEL, VERSION_H, DEPFLAGS, CC, CFLAGS and LDLIBS.
#
#   $(BUILD)/fuzz/fuzz_config     libFuzzer: config_parse_buffer()
#   $(BUILD)/fuzz/fuzz_api        libFuzzer: api.c's request path (on_request ... api_handle)
#   $(BUILD)/fuzz/fuzz_text       libFuzzer: outside text into JSON (utf8text,
#                                 a query error into a verdict and a message)
#   $(BUILD)/fuzz/test_bpf_fuzz   random/mutated packets through the BPF
#                                 programs with BPF_PROG_TEST_RUN (root)
#
# The libFuzzer targets build the userspace sources again with clang and
# the fuzzer's coverage instrumentation plus ASan and UBSan (a UBSan finding
# aborts, so libFuzzer keeps the input); the gcc objects are not reused.
# Run them with tests/fuzz/run.sh [SECONDS] ("make fuzz" runs 60 s each).

FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -g -O1 -std=gnu11 -Wall -Wextra \
                -Iheaders -Iuserspace -I$(BUILD) -D_GNU_SOURCE

# The schema, its YAML tree, file loading and metric names; of netparse.c
# only the address/port/weight parsers.
FUZZ_CONFIG_SRCS := userspace/config.c userspace/config_load.c userspace/yamltree.c \
                    userspace/metric_kind.c userspace/netparse.c
# api.c reaches agent.c, which links in most of the library: take all of it.
FUZZ_API_SRCS    := $(LIB_SRCS)

FUZZ_CONFIG_OBJS := $(patsubst userspace/%.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_CONFIG_SRCS))
FUZZ_API_OBJS    := $(patsubst userspace/%.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_API_SRCS))

$(FUZZ_BUILD)/obj/%.o: userspace/%.c | $(SKEL) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(DEPFLAGS) -c $< -o $@

$(FUZZ_BUILD)/fuzz_config: tests/fuzz/fuzz_config.c $(FUZZ_CONFIG_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ -lyaml -lm

# fuzz_api compiles api.c into itself (its static request path is what it fuzzes).
$(FUZZ_BUILD)/fuzz_api: tests/fuzz/fuzz_api.c userspace/api.c $(filter-out %/api.o,$(FUZZ_API_OBJS))
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter-out userspace/api.c,$^) $(LDLIBS)

$(FUZZ_BUILD)/fuzz_text: tests/fuzz/fuzz_text.c $(FUZZ_API_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

# The packet fuzzer drives the real skeleton, like the BPF suite (tests/bpf/harness.c).
$(FUZZ_BUILD)/test_bpf_fuzz: tests/bpf/test_bpf_fuzz.c $(TESTFIX_HDRS) $(TESTFIX_LIB) $(DP_LIB) $(SKEL)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/lib -o $@ $< $(TESTFIX_LIB) $(DP_LIB) -lbpf -lelf -lz -lpthread

FUZZ_PROGS := $(FUZZ_BUILD)/fuzz_config $(FUZZ_BUILD)/fuzz_api $(FUZZ_BUILD)/fuzz_text \
              $(FUZZ_BUILD)/test_bpf_fuzz

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_PROGS)

fuzz: $(FUZZ_BUILD)/fuzz_config $(FUZZ_BUILD)/fuzz_api $(FUZZ_BUILD)/fuzz_text
	tests/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

.SECONDARY: $(FUZZ_API_OBJS)
