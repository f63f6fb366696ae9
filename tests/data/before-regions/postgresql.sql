-- pg_dump of a consent log written by consentmw before region, mode, language and scan existed
-- (commit 9ce2a74); psql's \restrict lines, the schema name and the search_path reset taken out,
-- so that any client can load it into the schema of its choice.

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

CREATE FUNCTION consent_log_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'the consent log is append-only: record a new choice instead';
END
$$;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE consent_log (
    id bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    consent_id text NOT NULL,
    policy_id text,
    policy_version text NOT NULL,
    choices jsonb NOT NULL,
    method text NOT NULL,
    path text DEFAULT ''::text NOT NULL,
    ip text DEFAULT ''::text NOT NULL,
    user_agent text DEFAULT ''::text NOT NULL
);

ALTER TABLE consent_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME consent_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

INSERT INTO consent_log OVERRIDING SYSTEM VALUE VALUES (1, '2026-11-02 09:30:00+00', 'visitor-a', 'shop', '3', '{"analytics": true, "necessary": true, "advertising": false}', 'banner', '/', '203.0.113.0', 'Chrome');
INSERT INTO consent_log OVERRIDING SYSTEM VALUE VALUES (2, '2026-11-03 09:30:00+00', 'visitor-a', 'shop', '3', '{"analytics": false, "necessary": true, "advertising": false}', 'settings', '/settings', '203.0.113.0', 'Chrome');
INSERT INTO consent_log OVERRIDING SYSTEM VALUE VALUES (3, '2026-11-02 14:30:00+00', 'visitor-b', NULL, '3', '{"analytics": false, "necessary": true, "advertising": false}', 'form', '/상품/42', '2001:db8::', 'Firefox');
INSERT INTO consent_log OVERRIDING SYSTEM VALUE VALUES (4, '2026-10-30 09:30:00+00', 'visitor-c', 'shop', '2', '{"analytics": true, "necessary": true, "advertising": true}', 'gpc', '=1+1', '', 'Samsung Internet');

SELECT pg_catalog.setval('consent_log_id_seq', 4, true);

ALTER TABLE ONLY consent_log
    ADD CONSTRAINT consent_log_pkey PRIMARY KEY (id);

CREATE INDEX consent_log_consent_id ON consent_log USING btree (consent_id);

CREATE INDEX consent_log_created_at ON consent_log USING btree (created_at);

CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log FOR EACH ROW EXECUTE FUNCTION consent_log_append_only();

