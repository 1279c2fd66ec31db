build/obj/lib/base/err.o: lib/base/err.c lib/base/err.h
lib/base/err.h:
