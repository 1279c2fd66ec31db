/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL schema, as an ordered table of migrations numbered like
 * upstream's (golang-migrate versions, recorded in schema_migrations), so a
 * database can move between this control plane and upstream tools. Each
 * step is applied in its own transaction. */
#include "cp/store/pg_schema.h"

const struct cp_pg_migration cp_pg_migrations[] = {
    {1579518998, "CREATE TABLE IF NOT EXISTS resources ("
		 " name varchar(100) NOT NULL, namespace varchar(100) NOT NULL,"
		 " mesh varchar(100) NOT NULL, type varchar(100) NOT NULL,"
		 " version integer NOT NULL, spec text,"
		 " PRIMARY KEY (name, namespace, mesh, type))"},
    {1580128050, "ALTER TABLE resources ADD COLUMN creation_time timestamp NOT NULL DEFAULT now();"
		 "ALTER TABLE resources ADD COLUMN modification_time timestamp NOT NULL DEFAULT now()"},
    {1589041445, "ALTER TABLE resources DROP CONSTRAINT resources_pkey,"
		 " ADD CONSTRAINT resources_pkey PRIMARY KEY (name, mesh, type);"
		 "ALTER TABLE resources DROP COLUMN namespace;"
		 "ALTER TABLE resources ADD COLUMN owner_name varchar(100),"
		 " ADD COLUMN owner_mesh varchar(100), ADD COLUMN owner_type varchar(100);"
		 "ALTER TABLE resources ADD CONSTRAINT owner_fk FOREIGN KEY (owner_name, owner_mesh, owner_type)"
		 " REFERENCES resources (name, mesh, type) ON DELETE CASCADE"},
    {1592232449, "CREATE TABLE locks (name varchar(255) PRIMARY KEY, record_version_number bigint,"
		 " data bytea, owner varchar(255));"
		 "CREATE SEQUENCE locks_rvn OWNED BY locks.record_version_number"},
    {1604501001, "ALTER TABLE resources DROP CONSTRAINT owner_fk;"
		 "UPDATE resources SET mesh = '' WHERE type IN ('Mesh', 'Zone');"
		 "UPDATE resources SET owner_mesh = '' WHERE owner_type IN ('Mesh', 'Zone');"
		 "ALTER TABLE resources ADD CONSTRAINT owner_fk FOREIGN KEY (owner_name, owner_mesh, owner_type)"
		 " REFERENCES resources (name, mesh, type) ON DELETE CASCADE"},
    {1605012491, "CREATE OR REPLACE FUNCTION notify_event() RETURNS trigger AS $$ BEGIN"
		 " PERFORM pg_notify('resource_events', json_build_object('table', TG_TABLE_NAME,"
		 " 'action', TG_OP, 'data', row_to_json(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END))::text);"
		 " RETURN NULL; END; $$ LANGUAGE plpgsql;"
		 "CREATE TRIGGER products_notify_event AFTER INSERT OR UPDATE OR DELETE ON resources"
		 " FOR EACH ROW EXECUTE PROCEDURE notify_event()"},
    /* the event carries only the key: {"action","data":{"name","mesh","type"}} */
    {1610445956, "CREATE OR REPLACE FUNCTION notify_event() RETURNS trigger AS $$ DECLARE r record; BEGIN"
		 " IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;"
		 " PERFORM pg_notify('resource_events', json_build_object('action', TG_OP, 'data',"
		 " json_build_object('name', r.name, 'mesh', r.mesh, 'type', r.type))::text);"
		 " RETURN NULL; END; $$ LANGUAGE plpgsql"},
    {1677096751, "ALTER TABLE resources ALTER COLUMN name TYPE varchar(253)"},
    {1693473198, "CREATE INDEX IF NOT EXISTS owner_fk_index ON resources (owner_type, owner_mesh, owner_name)"},
    {1701180642, "ALTER TABLE resources ADD COLUMN labels jsonb DEFAULT '{}'::jsonb"},
    {1710856785, "ALTER TABLE resources ADD COLUMN status jsonb NOT NULL DEFAULT '{}'::jsonb"},
};

const size_t cp_pg_migrations_len = sizeof(cp_pg_migrations) / sizeof(cp_pg_migrations[0]);
