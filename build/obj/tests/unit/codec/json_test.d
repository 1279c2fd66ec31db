build/obj/tests/unit/codec/json_test.o: tests/unit/codec/json_test.c \
 lib/codec/json.h lib/base/arena.h lib/base/buf.h lib/base/str.h \
 lib/base/err.h tests/unit/codec/../test.h
lib/codec/json.h:
lib/base/arena.h:
lib/base/buf.h:
lib/base/str.h:
lib/base/err.h:
tests/unit/codec/../test.h:
