build/obj/lib/codec/json.o: lib/codec/json.c lib/codec/json.h \
 lib/base/arena.h lib/base/buf.h lib/base/str.h lib/base/err.h
lib/codec/json.h:
lib/base/arena.h:
lib/base/buf.h:
lib/base/str.h:
lib/base/err.h:
