-- Every committed change to a map table is announced on the channel
-- 'gridmap_changes' with the table and the extent of the rows it touched (old
-- and new), so every server replica can rebuild its index and drop exactly the
-- cached tiles that show the change. NOTIFY is delivered at commit, never for
-- a rolled-back import or edit. Statement-level triggers with transition
-- tables send one message per statement, however many rows it touched.
CREATE FUNCTION gridmap_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    extent box2d;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT ST_Extent(geom) INTO extent FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT ST_Extent(geom) INTO extent FROM old_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT ST_Extent(geom) INTO extent
          FROM (SELECT geom FROM old_rows UNION ALL SELECT geom FROM new_rows) touched;
    END IF;
    -- A TRUNCATE, or a statement that touched no row, has no extent: null
    -- tells listeners to refresh the whole table.
    PERFORM pg_notify('gridmap_changes', json_build_object(
        'table', TG_TABLE_NAME,
        'op', TG_OP,
        'bbox', CASE WHEN extent IS NULL THEN NULL
                     ELSE json_build_array(ST_XMin(extent), ST_YMin(extent),
                                           ST_XMax(extent), ST_YMax(extent)) END
    )::text);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    map_table text;
BEGIN
    FOREACH map_table IN ARRAY ARRAY['districts', 'streets', 'communities', 'grids',
                                     'grid_units', 'buildings', 'addresses', 'stations', 'roads']
    LOOP
        EXECUTE format('CREATE TRIGGER %1$s_notify_insert AFTER INSERT ON %1$I
                          REFERENCING NEW TABLE AS new_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change()', map_table);
        EXECUTE format('CREATE TRIGGER %1$s_notify_update AFTER UPDATE ON %1$I
                          REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change()', map_table);
        EXECUTE format('CREATE TRIGGER %1$s_notify_delete AFTER DELETE ON %1$I
                          REFERENCING OLD TABLE AS old_rows
                          FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change()', map_table);
        EXECUTE format('CREATE TRIGGER %1$s_notify_truncate AFTER TRUNCATE ON %1$I
                          FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change()', map_table);
    END LOOP;
END
$$;
