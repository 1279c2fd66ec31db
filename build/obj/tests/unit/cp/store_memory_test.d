build/obj/tests/unit/cp/store_memory_test.o: \
 tests/unit/cp/store_memory_test.c lib/base/err.h cp/store/store.h \
 lib/base/arena.h lib/resource/resource.h lib/base/buf.h lib/base/str.h \
 lib/codec/json.h lib/resource/type.h tests/unit/cp/../test.h
lib/base/err.h:
cp/store/store.h:
lib/base/arena.h:
lib/resource/resource.h:
lib/base/buf.h:
lib/base/str.h:
lib/codec/json.h:
lib/resource/type.h:
tests/unit/cp/../test.h:
