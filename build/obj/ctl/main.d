build/obj/ctl/main.o: ctl/main.c
