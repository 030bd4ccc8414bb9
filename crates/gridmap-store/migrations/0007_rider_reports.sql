-- Rider activity reports: where and when delivery riders, couriers and other
-- workers of the new-employment groups (新就业群体) rested, waited for orders
-- or sent a lead (riders also serve as part-time grid workers and report what
-- they see on their rounds). They weigh the rest-stop gaps of the coverage
-- report: a rest stop (骑手驿站, 暖心驿站, 先锋驿站) is most needed where riders
-- actually are.
--
-- Riders are people: this table stores NO rider identity — no name, phone,
-- rider number, platform account or device id — only a point, a time, what
-- kind of activity it was and which system sent it. The importer drops
-- personal columns of the source and says so in its report. No tile layer and
-- no public endpoint shows a single report's location or time; the coverage
-- endpoint answers with totals only.
CREATE TABLE rider_reports (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reported_at timestamptz NOT NULL,
    -- 'rest' (a rider resting or asking for a place to rest), 'delivery'
    -- (picking up or handing over an order), 'lead' (a report to the grid,
    -- 随手拍), 'other'; NULL when the source does not say.
    kind        text CHECK (kind IN ('rest', 'delivery', 'lead', 'other')),
    -- The system the report came from (a platform, a mini-program); free text.
    source      text CHECK (source <> ''),
    geom        geometry(Point, 4490) NOT NULL CHECK (NOT ST_IsEmpty(geom)),
    geom_3857   geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);

CREATE INDEX ON rider_reports USING gist (geom_3857);
CREATE INDEX ON rider_reports (reported_at);

-- Announced like every map table (migration 0002), so a server can follow
-- imports of new reports.
CREATE TRIGGER rider_reports_notify_insert AFTER INSERT ON rider_reports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER rider_reports_notify_update AFTER UPDATE ON rider_reports
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER rider_reports_notify_delete AFTER DELETE ON rider_reports
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
CREATE TRIGGER rider_reports_notify_truncate AFTER TRUNCATE ON rider_reports
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_notify_change();
