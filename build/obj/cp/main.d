build/obj/cp/main.o: cp/main.c lib/base/err.h lib/base/log.h cp/api/api.h \
 cp/api/http.h lib/base/arena.h lib/base/buf.h lib/base/str.h \
 lib/ev/loop.h cp/runtime.h cp/config/config.h lib/codec/json.h \
 cp/store/store.h lib/resource/resource.h lib/resource/type.h \
 lib/resource/violations.h cp/events.h cp/insights.h cp/manager.h
lib/base/err.h:
lib/base/log.h:
cp/api/api.h:
cp/api/http.h:
lib/base/arena.h:
lib/base/buf.h:
lib/base/str.h:
lib/ev/loop.h:
cp/runtime.h:
cp/config/config.h:
lib/codec/json.h:
cp/store/store.h:
lib/resource/resource.h:
lib/resource/type.h:
lib/resource/violations.h:
cp/events.h:
cp/insights.h:
cp/manager.h:
