build/obj/ctl/main.o: ctl/main.c lib/base/log.h lib/base/str.h ctl/ctl.h \
 lib/base/arena.h lib/base/buf.h lib/codec/json.h lib/resource/type.h \
 lib/resource/validate.h lib/resource/resource.h \
 lib/resource/violations.h
lib/base/log.h:
lib/base/str.h:
ctl/ctl.h:
lib/base/arena.h:
lib/base/buf.h:
lib/codec/json.h:
lib/resource/type.h:
lib/resource/validate.h:
lib/resource/resource.h:
lib/resource/violations.h:
