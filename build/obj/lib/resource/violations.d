build/obj/lib/resource/violations.o: lib/resource/violations.c \
 lib/resource/violations.h lib/base/arena.h
lib/resource/violations.h:
lib/base/arena.h:
