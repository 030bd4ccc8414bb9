-- wrk script: single lookups at uniformly random points over the extent given
-- in the environment (GRIDMAP_BBOX="west,south,east,north"), with
-- GRIDMAP_LOOKUP_EXTRA (e.g. "&fields=grid") appended to every query.
-- GRIDMAP_LOOKUP_PATH (default /api/v1/lookup) names the path the queries go
-- to: /livez gives the HTTP ceiling with the same client work per request
-- (same script, same request sizes, the query string ignored by the server).
--
-- The requests are formatted once per thread at start-up and then cycled:
-- building a request in Lua for every call costs wrk more CPU than the
-- server spends answering it, and on a shared machine that CPU is taken from
-- the server, which would measure the load generator instead.
local bbox = {}
for value in string.gmatch(os.getenv("GRIDMAP_BBOX") or "", "[^,]+") do
  bbox[#bbox + 1] = tonumber(value)
end

local extra = os.getenv("GRIDMAP_LOOKUP_EXTRA") or ""
local path = os.getenv("GRIDMAP_LOOKUP_PATH") or "/api/v1/lookup"
local requests = {}
local n_requests = 10000
local next_request = 1

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  for i = 1, n_requests do
    local lon = bbox[1] + math.random() * (bbox[3] - bbox[1])
    local lat = bbox[2] + math.random() * (bbox[4] - bbox[2])
    requests[i] = wrk.format("GET", string.format("%s?lon=%.7f&lat=%.7f%s", path, lon, lat, extra))
  end
end

function request()
  local r = requests[next_request]
  next_request = next_request % n_requests + 1
  return r
end
