-- Grid workers (网格员): the people who staff each grid — full-time grid
-- workers (专职网格员), grid leaders (网格长) and part-time workers (兼职网格员,
-- often residents, party members or delivery riders). A city keeps them in a
-- roster (a spreadsheet: grid code, name, phone, post) rather than in the
-- grid layer; `gridmap-import --as grid_workers` loads it.
--
-- Personal data: names and phones are never in a public tile, embed or
-- unauthenticated response. No ID-card number is stored: there is no column
-- for it, and the importer drops such source columns and says so. The table
-- has no geometry and no change notification of its own: no tile shows it.
--
-- grids.worker_name and grids.worker_phone stay the columns every reader
-- uses (the lookup for authorised callers, the staffing gap check of 一网一员,
-- the exporter with --include-personal). For every grid that has rows here
-- they hold the grid's primary worker, kept so by the triggers below:
-- full-time first, since 一网一员 means one full-time worker per grid, then
-- the grid leader, then part-time workers; ties in roster order.
CREATE TABLE grid_workers (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grid_code text NOT NULL REFERENCES grids (code),
    name      text NOT NULL CHECK (btrim(name) <> ''),
    -- A mobile (13800000000) or a landline with its area code (0535-8123456,
    -- with an extension after a second '-'), as the importer normalises it.
    phone     text CHECK (phone ~ '^[0-9][0-9-]{6,19}$'),
    -- 'full_time' (专职网格员), 'grid_leader' (网格长), 'part_time' (兼职网格员).
    role      text NOT NULL DEFAULT 'full_time'
              CHECK (role IN ('full_time', 'grid_leader', 'part_time')),
    -- The city's own staff number (人员编号, 工号), if the roster has one.
    staff_id  text CHECK (staff_id <> ''),
    -- A person is listed once per grid; the importer matches rows by this.
    UNIQUE (grid_code, name)
);

-- The grid's primary worker, or no row when the grid has none.
CREATE FUNCTION gridmap_primary_worker(grid text)
RETURNS TABLE (name text, phone text)
LANGUAGE sql STABLE AS $$
    SELECT w.name, w.phone
      FROM grid_workers w
     WHERE w.grid_code = grid
     ORDER BY CASE w.role WHEN 'full_time' THEN 0 WHEN 'grid_leader' THEN 1 ELSE 2 END, w.id
     LIMIT 1
$$;

-- Sets the worker columns of the grids `codes` to their primary worker
-- (NULL when a grid has none left). Grids already right are not updated, so
-- their version and the change notification stay untouched.
CREATE FUNCTION gridmap_set_primary_workers(codes text[])
RETURNS void
LANGUAGE sql AS $$
    UPDATE grids g
       SET worker_name = p.name, worker_phone = p.phone
      FROM (SELECT DISTINCT unnest(codes) AS code) c
      LEFT JOIN LATERAL gridmap_primary_worker(c.code) p ON true
     WHERE g.code = c.code
       AND (g.worker_name, g.worker_phone) IS DISTINCT FROM (p.name, p.phone)
$$;

-- One UPDATE of grids per statement on grid_workers, however many rows it
-- touched: an import of a whole roster updates the grids once.
CREATE FUNCTION gridmap_grid_workers_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM gridmap_set_primary_workers(ARRAY(SELECT grid_code FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM gridmap_set_primary_workers(ARRAY(
            SELECT grid_code FROM new_rows UNION SELECT grid_code FROM old_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM gridmap_set_primary_workers(ARRAY(SELECT grid_code FROM old_rows));
    ELSE
        -- TRUNCATE: every grid that had workers has none left.
        UPDATE grids SET worker_name = NULL, worker_phone = NULL
         WHERE code IN (SELECT grid_code FROM grid_workers);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER grid_workers_insert AFTER INSERT ON grid_workers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_workers_changed();
CREATE TRIGGER grid_workers_update AFTER UPDATE ON grid_workers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_workers_changed();
CREATE TRIGGER grid_workers_delete AFTER DELETE ON grid_workers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_workers_changed();
-- Before, so that the rows are still there to name the grids.
CREATE TRIGGER grid_workers_truncate BEFORE TRUNCATE ON grid_workers
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_workers_changed();

-- The other direction: a write of a grid's worker columns (a re-import of
-- the grid layer, with or without worker fields, or an edit) cannot move
-- them away from the roster while the grid has workers in it.
CREATE FUNCTION gridmap_grid_keeps_primary_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    primary_worker record;
BEGIN
    SELECT p.name, p.phone INTO primary_worker FROM gridmap_primary_worker(NEW.code) p;
    IF FOUND THEN
        NEW.worker_name := primary_worker.name;
        NEW.worker_phone := primary_worker.phone;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER grids_keep_primary_worker BEFORE UPDATE OF worker_name, worker_phone ON grids
    FOR EACH ROW EXECUTE FUNCTION gridmap_grid_keeps_primary_worker();
