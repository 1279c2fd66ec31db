build/obj/lib/ev/loop.o: lib/ev/loop.c lib/ev/loop.h lib/base/mem.h
lib/ev/loop.h:
lib/base/mem.h:
