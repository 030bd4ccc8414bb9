-- Departmental grids (多网合一): the grids each department drew before the
-- base grids merged them into one layer (city management, emergency
-- management, police beats …). Kept as labelled overlays for lookups and the
-- map; they are not part of the administrative chain, so their codes are the
-- departments' own and nest in nothing.
CREATE TABLE department_grids (
    code       text PRIMARY KEY CHECK (code <> ''),
    department text NOT NULL CHECK (department <> ''),
    name       text NOT NULL CHECK (name <> ''),
    geom       geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857  geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);

CREATE INDEX ON department_grids USING gist (geom_3857);
CREATE INDEX ON department_grids (department);

-- Announced like every map table (migration 0002).
CREATE TRIGGER department_grids_notify_insert AFTER INSERT ON department_grids
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER department_grids_notify_update AFTER UPDATE ON department_grids
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER department_grids_notify_delete AFTER DELETE ON department_grids
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER department_grids_notify_truncate AFTER TRUNCATE ON department_grids
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
