-- Versions and history of the objects planners edit.
--
-- Every editable row carries a version drawn from one sequence, renewed by a
-- trigger on every UPDATE whoever makes it (the editing API, an import in
-- upsert mode, a hand-written statement). Versions never repeat, not even
-- for a code deleted and created again, so an entity tag built from the
-- version names exactly one state of one object.
CREATE SEQUENCE gridmap_version_seq;

CREATE FUNCTION gridmap_next_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('gridmap_version_seq');
    RETURN NEW;
END
$$;

DO $$
DECLARE
    edited_table text;
BEGIN
    FOREACH edited_table IN ARRAY ARRAY['communities', 'grids', 'grid_units', 'stations']
    LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN version bigint NOT NULL
                          DEFAULT nextval(''gridmap_version_seq'')', edited_table);
        EXECUTE format('CREATE TRIGGER %1$s_next_version BEFORE UPDATE ON %1$I
                          FOR EACH ROW EXECUTE FUNCTION gridmap_next_version()', edited_table);
    END LOOP;
END
$$;

-- One row per object changed by a write of the editing API: who, when, what,
-- and the whole object before and after (GeoJSON Features in CGCS2000, with
-- every column, personal data included: the log is read only by roles that
-- may see it). The rows of one write share `change_id`.
CREATE SEQUENCE gridmap_change_seq;

CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_id      bigint NOT NULL,
    at             timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL CHECK (actor <> ''),
    operation      text NOT NULL,
    entity         text NOT NULL CHECK (entity IN ('community', 'grid', 'grid_unit', 'station', 'building')),
    code           text NOT NULL,
    version_before bigint,
    version_after  bigint,
    before         jsonb,
    after          jsonb,
    CHECK (before IS NOT NULL OR after IS NOT NULL)
);

CREATE INDEX ON audit_log (entity, code, id);
CREATE INDEX ON audit_log (change_id);
