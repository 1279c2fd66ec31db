/* SPDX-License-Identifier: Apache-2.0 */
/* PostgreSQL schema migrations (pg_schema.c). */
#ifndef CP_STORE_PG_SCHEMA_H
#define CP_STORE_PG_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

struct cp_pg_migration {
	int64_t version;
	const char *sql;
};

extern const struct cp_pg_migration cp_pg_migrations[];
extern const size_t cp_pg_migrations_len;

#endif
