build/obj/cp/main.o: cp/main.c
