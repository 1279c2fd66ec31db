# libFuzzer build of tests/fuzz/jwt_fuzz.c (JWT parse/verify and the user and
# dataplane token validators). Included from fuzz.mk: `include tests/fuzz/jwt.mk`.
# `make jwt-fuzz` builds build-fuzz/jwt_fuzz; `make jwt-fuzz-smoke` runs it 20s
# over the seed corpus tests/fuzz/corpus/jwt (new findings go to build-fuzz).
FUZZ_BUILD ?= build-fuzz
FUZZ_CC ?= clang
JWT_FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -Ilib -I. $(PKG_CFLAGS)
JWT_FUZZ_SRC := tests/fuzz/jwt_fuzz.c lib/auth/jwt.c cp/tokens/tokens.c \
	$(sort $(wildcard lib/base/*.c)) lib/codec/json.c

.PHONY: jwt-fuzz jwt-fuzz-smoke
jwt-fuzz: $(FUZZ_BUILD)/jwt_fuzz

$(FUZZ_BUILD)/jwt_fuzz: $(JWT_FUZZ_SRC) lib/auth/jwt.h cp/tokens/tokens.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(JWT_FUZZ_CFLAGS) -o $@ $(JWT_FUZZ_SRC) $(PKG_LIBS) -lm

jwt-fuzz-smoke: $(FUZZ_BUILD)/jwt_fuzz
	@mkdir -p $(FUZZ_BUILD)/corpus/jwt
	$(FUZZ_BUILD)/jwt_fuzz -max_total_time=20 -max_len=8192 \
		$(FUZZ_BUILD)/corpus/jwt tests/fuzz/corpus/jwt
