-- wrk script: single lookups at uniformly random points over the extent given
-- in the environment (GRIDMAP_BBOX="west,south,east,north").
local bbox = {}
for value in string.gmatch(os.getenv("GRIDMAP_BBOX") or "", "[^,]+") do
  bbox[#bbox + 1] = tonumber(value)
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  local lon = bbox[1] + math.random() * (bbox[3] - bbox[1])
  local lat = bbox[2] + math.random() * (bbox[4] - bbox[2])
  return wrk.format("GET", string.format("/api/v1/lookup?lon=%.7f&lat=%.7f", lon, lat))
end
