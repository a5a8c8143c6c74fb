-- Runs once when the compose PostGIS volume is created (as the image's superuser).
-- porte_owner owns the schema and runs migrations; porte_app is the service: it owns nothing and
-- has no BYPASSRLS, so row-level security isolates campaigns even if a query forgets its filter.
-- Change both passwords (and the URLs in docker-compose.yml / your .env) before real use.
CREATE ROLE porte_owner LOGIN BYPASSRLS PASSWORD 'change-owner-password';
CREATE ROLE porte_app LOGIN NOBYPASSRLS PASSWORD 'change-app-password';
CREATE DATABASE porte OWNER porte_owner;
\connect porte
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
ALTER SCHEMA public OWNER TO porte_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE porte TO porte_app;
