build/obj/cp/store/memory.o: cp/store/memory.c lib/base/err.h \
 lib/base/mem.h cp/store/store.h lib/base/arena.h lib/resource/resource.h \
 lib/base/buf.h lib/base/str.h lib/codec/json.h lib/resource/type.h
lib/base/err.h:
lib/base/mem.h:
cp/store/store.h:
lib/base/arena.h:
lib/resource/resource.h:
lib/base/buf.h:
lib/base/str.h:
lib/codec/json.h:
lib/resource/type.h:
