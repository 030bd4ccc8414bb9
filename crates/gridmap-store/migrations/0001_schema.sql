-- gridmap schema. Geometries are stored in CGCS2000 (EPSG:4490); every polygon
-- table also keeps a generated Web Mercator copy so that tile queries never
-- reproject on the request path.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE districts (
    code      text PRIMARY KEY CHECK (code ~ '^[0-9]{6}$'),
    name      text NOT NULL CHECK (name <> ''),
    geom      geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857 geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);

CREATE TABLE streets (
    code          text PRIMARY KEY CHECK (code ~ '^[0-9]{9}$'),
    district_code text NOT NULL REFERENCES districts (code),
    name          text NOT NULL CHECK (name <> ''),
    geom          geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857     geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CHECK (starts_with(code, district_code))
);

CREATE TABLE communities (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{12}$'),
    street_code text NOT NULL REFERENCES streets (code),
    name        text NOT NULL CHECK (name <> ''),
    -- 'urban' for a residents' committee (社区居委会), 'village' for 村委会.
    kind        text NOT NULL DEFAULT 'urban' CHECK (kind IN ('urban', 'village')),
    geom        geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857   geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CHECK (starts_with(code, street_code))
);

CREATE TABLE grids (
    code           text PRIMARY KEY CHECK (code ~ '^[0-9]{15}$'),
    community_code text NOT NULL REFERENCES communities (code),
    name           text NOT NULL CHECK (name <> ''),
    kind           text NOT NULL CHECK (kind IN ('basic', 'exclusive')),
    status         text NOT NULL DEFAULT 'green'
                   CHECK (status IN ('green', 'blue', 'yellow', 'orange', 'red')),
    -- Personal data: never in a public tile, embed or unauthenticated response.
    worker_name    text,
    worker_phone   text,
    geom           geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857      geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CHECK (starts_with(code, community_code))
);

CREATE TABLE grid_units (
    code      text PRIMARY KEY CHECK (code ~ '^[0-9]{18}$'),
    grid_code text NOT NULL REFERENCES grids (code),
    name      text NOT NULL CHECK (name <> ''),
    geom      geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857 geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CHECK (starts_with(code, grid_code))
);

CREATE TABLE buildings (
    code       text PRIMARY KEY CHECK (code ~ '^[0-9]{22}$'),
    grid_code  text NOT NULL REFERENCES grids (code),
    unit_code  text REFERENCES grid_units (code),
    name       text NOT NULL CHECK (name <> ''),
    households integer NOT NULL CHECK (households >= 0),
    floors     integer CHECK (floors > 0),
    geom       geometry(MultiPolygon, 4490) NOT NULL CHECK (ST_IsValid(geom)),
    geom_3857  geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
    CHECK (starts_with(code, grid_code)),
    CHECK (unit_code IS NULL OR starts_with(code, unit_code))
);

CREATE TABLE addresses (
    code          text PRIMARY KEY CHECK (code <> ''),
    building_code text NOT NULL REFERENCES buildings (code),
    address       text NOT NULL CHECK (address <> ''),
    geom          geometry(Point, 4490) NOT NULL,
    geom_3857     geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);

CREATE TABLE stations (
    code           text PRIMARY KEY CHECK (code <> ''),
    kind           text NOT NULL
                   CHECK (kind IN ('service_centre', 'red_station', 'grid_station', 'rider_rest_stop')),
    name           text NOT NULL CHECK (name <> ''),
    community_code text NOT NULL REFERENCES communities (code),
    grid_code      text REFERENCES grids (code),
    area_m2        double precision CHECK (area_m2 > 0),
    amenities      text[] NOT NULL DEFAULT '{}',
    opening_hours  text,
    geom           geometry(Point, 4490) NOT NULL,
    geom_3857      geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);

-- The walkable network: every road, street and footpath a resident can walk.
CREATE TABLE roads (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text,
    class     text NOT NULL CHECK (class IN ('primary', 'secondary', 'residential', 'footway')),
    geom      geometry(LineString, 4490) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
    geom_3857 geometry(LineString, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED
);

CREATE INDEX ON districts USING gist (geom_3857);
CREATE INDEX ON streets USING gist (geom_3857);
CREATE INDEX ON streets (district_code);
CREATE INDEX ON communities USING gist (geom_3857);
CREATE INDEX ON communities (street_code);
CREATE INDEX ON grids USING gist (geom);
CREATE INDEX ON grids USING gist (geom_3857);
CREATE INDEX ON grids (community_code);
CREATE INDEX ON grid_units USING gist (geom_3857);
CREATE INDEX ON grid_units (grid_code);
CREATE INDEX ON buildings USING gist (geom);
CREATE INDEX ON buildings USING gist (geom_3857);
CREATE INDEX ON buildings (grid_code);
CREATE INDEX ON addresses USING gist (geom_3857);
CREATE INDEX ON addresses (building_code);
CREATE INDEX ON stations USING gist (geom_3857);
CREATE INDEX ON roads USING gist (geom_3857);
