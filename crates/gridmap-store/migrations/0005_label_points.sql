-- Label points of the named polygons: the pole of inaccessibility, i.e. the
-- centre of the largest circle inscribed in the polygon, found by GEOS in Web
-- Mercator (so the circle is round on the map, not in degrees). Unlike a
-- centroid it always lies inside, with the most room around it for a Chinese
-- name. Stored rather than computed per tile: the search costs far more than
-- reading a point, and a low-zoom tile would repeat it for every polygon in it.
ALTER TABLE districts ADD COLUMN label_3857 geometry(Point, 3857)
    GENERATED ALWAYS AS ((ST_MaximumInscribedCircle(ST_Transform(geom, 3857))).center) STORED;
ALTER TABLE streets ADD COLUMN label_3857 geometry(Point, 3857)
    GENERATED ALWAYS AS ((ST_MaximumInscribedCircle(ST_Transform(geom, 3857))).center) STORED;
ALTER TABLE communities ADD COLUMN label_3857 geometry(Point, 3857)
    GENERATED ALWAYS AS ((ST_MaximumInscribedCircle(ST_Transform(geom, 3857))).center) STORED;
ALTER TABLE grids ADD COLUMN label_3857 geometry(Point, 3857)
    GENERATED ALWAYS AS ((ST_MaximumInscribedCircle(ST_Transform(geom, 3857))).center) STORED;

CREATE INDEX ON districts USING gist (label_3857);
CREATE INDEX ON streets USING gist (label_3857);
CREATE INDEX ON communities USING gist (label_3857);
CREATE INDEX ON grids USING gist (label_3857);
