build/obj/lib/resource/resource.o: lib/resource/resource.c \
 lib/resource/resource.h lib/base/arena.h lib/base/buf.h lib/base/str.h \
 lib/codec/json.h lib/resource/type.h lib/base/err.h
lib/resource/resource.h:
lib/base/arena.h:
lib/base/buf.h:
lib/base/str.h:
lib/codec/json.h:
lib/resource/type.h:
lib/base/err.h:
