build/obj/cp/store/filter.o: cp/store/filter.c lib/codec/json.h \
 lib/base/arena.h lib/base/buf.h lib/base/str.h cp/store/store.h \
 lib/resource/resource.h lib/resource/type.h
lib/codec/json.h:
lib/base/arena.h:
lib/base/buf.h:
lib/base/str.h:
cp/store/store.h:
lib/resource/resource.h:
lib/resource/type.h:
