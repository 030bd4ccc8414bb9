-- A TRUNCATE of grid_workers now clears the worker columns of the grids that
-- had workers. Migration 0008's BEFORE TRUNCATE trigger set them to NULL, but
-- the grids' own trigger, seeing the roster rows still there, put the primary
-- worker back. The TRUNCATE branch now tells that trigger to let the NULLs
-- through, for the rest of its own statement only.
CREATE OR REPLACE FUNCTION gridmap_grid_workers_changed() RETURNS trigger
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
        PERFORM set_config('gridmap.clearing_grid_workers', 'on', true);
        UPDATE grids SET worker_name = NULL, worker_phone = NULL
         WHERE code IN (SELECT grid_code FROM grid_workers);
        PERFORM set_config('gridmap.clearing_grid_workers', '', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION gridmap_grid_keeps_primary_worker() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    primary_worker record;
BEGIN
    IF current_setting('gridmap.clearing_grid_workers', true) = 'on' THEN
        RETURN NEW;
    END IF;
    SELECT p.name, p.phone INTO primary_worker FROM gridmap_primary_worker(NEW.code) p;
    IF FOUND THEN
        NEW.worker_name := primary_worker.name;
        NEW.worker_phone := primary_worker.phone;
    END IF;
    RETURN NEW;
END
$$;
