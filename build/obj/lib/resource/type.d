build/obj/lib/resource/type.o: lib/resource/type.c lib/resource/type.h \
 lib/base/str.h
lib/resource/type.h:
lib/base/str.h:
