build/obj/lib/base/log.o: lib/base/log.c lib/base/log.h
lib/base/log.h:
