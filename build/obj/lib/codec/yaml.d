build/obj/lib/codec/yaml.o: lib/codec/yaml.c lib/codec/yaml.h \
 lib/codec/json.h lib/base/arena.h lib/base/buf.h lib/base/str.h \
 lib/base/err.h
lib/codec/yaml.h:
lib/codec/json.h:
lib/base/arena.h:
lib/base/buf.h:
lib/base/str.h:
lib/base/err.h:
