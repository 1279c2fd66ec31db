build/obj/lib/base/arena.o: lib/base/arena.c lib/base/arena.h \
 lib/base/mem.h
lib/base/arena.h:
lib/base/mem.h:
