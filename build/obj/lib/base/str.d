build/obj/lib/base/str.o: lib/base/str.c lib/base/str.h
lib/base/str.h:
