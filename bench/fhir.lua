-- fhir.lua - wrk script for the FHIR benchmarks in bench/run.
--
--   wrk ... -s bench/fhir.lua URL -- MODE FILE [COUNT OUTFILE]
--
-- MODE
--   read     GET /fhir/Patient/ID cycling through the ids in FILE (one a line); expects 200
--   healthz  GET /healthz (the baseline with the same client-side work as read); expects 200
--   create   POST /fhir/Patient cycling through the bodies in FILE (NDJSON); expects 201
--   load     POST the first COUNT bodies of FILE exactly once each (run it with -t1), write
--            the ids of the created Patients to OUTFILE, print
--            "LOADED created=N failed=N seconds=S" and stop; expects 201
--
-- Every response goes through response(), which counts status codes; each thread also counts
-- the requests it sent. done() prints one machine-readable line that bench/run parses:
--   RESULT rps=... expected_per_s=... requests=... sent=... p50_ms=... p90_ms=... p99_ms=... max_ms=...
--          expected=... unexpected=... codes=200:n,... socket_errors=...
-- Requests are built once in init(); request() only indexes a table.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clock, bench_timespec_t *ts);
]]
local function now()
   local ts = ffi.new("bench_timespec_t")
   ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local mode, file, count, outfile, started
local requests = {}
local n, next_index = 0, 1
local expected_status

-- per thread, read back by done() through thread:get
codes = {}
sent = 0
got_expected = 0
got_unexpected = 0

local threads = {}
thread_number = 1 -- set for each thread by setup()

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_number", #threads)
end

local function read_lines(path)
   local lines = {}
   local f = assert(io.open(path, "r"))
   for line in f:lines() do
      if #line > 0 then
         lines[#lines + 1] = line
      end
   end
   f:close()
   return lines
end

function init(args)
   mode, file = args[1], args[2]
   count = tonumber(args[3] or "0")
   outfile = args[4]
   local fhir_headers = { ["Accept"] = "application/fhir+json" }
   -- bench/run passes the access token every /fhir request needs
   local token = os.getenv("BENCH_TOKEN")
   local auth = token and token ~= "" and ("Bearer " .. token) or nil
   fhir_headers["Authorization"] = auth
   if mode == "read" then
      expected_status = 200
      for _, id in ipairs(read_lines(file)) do
         requests[#requests + 1] = wrk.format("GET", "/fhir/Patient/" .. id, fhir_headers)
      end
   elseif mode == "healthz" then
      expected_status = 200
      requests[1] = wrk.format("GET", "/healthz", fhir_headers)
   elseif mode == "create" or mode == "load" then
      expected_status = 201
      local post_headers = { ["Accept"] = "application/fhir+json",
                             ["Content-Type"] = "application/fhir+json",
                             ["Authorization"] = auth }
      for _, body in ipairs(read_lines(file)) do
         if mode == "load" and count > 0 and #requests >= count then
            break
         end
         requests[#requests + 1] = wrk.format("POST", "/fhir/Patient", post_headers, body)
      end
   else
      error("fhir.lua: unknown mode " .. tostring(mode))
   end
   n = #requests
   assert(n > 0, "fhir.lua: nothing to send from " .. tostring(file))
   -- threads start at different places so they do not walk the same ids in step
   next_index = 1 + ((thread_number - 1) * math.floor(n / 7)) % n
   if mode == "load" then
      next_index = 1
      ids = {}
      filler = wrk.format("GET", "/healthz")
   end
end

function request()
   if mode == "load" then
      if not primed then
         -- wrk calls request() once on the first thread before it runs, to check the script,
         -- and discards the result: give it something harmless
         primed = true
         return filler
      end
      if sent >= n then
         -- all bodies are out; keep the connections busy with something harmless until the
         -- last 201 arrives (response() stops the thread then)
         return filler
      end
      if sent == 0 then
         started = now()
      end
      sent = sent + 1
      return requests[sent]
   end
   local r = requests[next_index]
   next_index = next_index + 1
   if next_index > n then
      next_index = 1
   end
   sent = sent + 1
   return r
end

function response(status, headers, body)
   codes[status] = (codes[status] or 0) + 1
   if mode == "load" then
      if status == 201 then
         got_expected = got_expected + 1
         local location = headers["location"] or headers["Location"] or ""
         ids[#ids + 1] = string.match(location, "/Patient/([^/]+)/_history/") or "?"
      elseif status ~= 200 then
         got_unexpected = got_unexpected + 1
      end
      if not finished and got_expected + got_unexpected >= n then
         finished = true
         local f = assert(io.open(outfile, "w"))
         for _, id in ipairs(ids) do
            f:write(id, "\n")
         end
         f:close()
         -- the main thread sleeps for -d regardless: bench/run interrupts wrk on this line
         io.write(string.format("LOADED created=%d failed=%d seconds=%.3f\n", got_expected,
                                got_unexpected, now() - started))
         io.flush()
         wrk.thread:stop()
      end
      return
   end
   if status == expected_status then
      got_expected = got_expected + 1
   else
      got_unexpected = got_unexpected + 1
   end
end

function done(summary, latency, _)
   local agg_codes, total_sent, expected, unexpected = {}, 0, 0, 0
   for _, thread in ipairs(threads) do
      total_sent = total_sent + thread:get("sent")
      expected = expected + thread:get("got_expected")
      unexpected = unexpected + thread:get("got_unexpected")
      for code, k in pairs(thread:get("codes")) do
         agg_codes[code] = (agg_codes[code] or 0) + k
      end
   end
   local list = {}
   for code, k in pairs(agg_codes) do
      list[#list + 1] = string.format("%d:%d", code, k)
   end
   table.sort(list)
   local e = summary.errors
   io.write(string.format(
      "RESULT rps=%.1f expected_per_s=%.1f requests=%d sent=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
      "expected=%d unexpected=%d codes=%s socket_errors=%d\n",
      summary.requests / (summary.duration / 1e6), expected / (summary.duration / 1e6),
      summary.requests, total_sent,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, expected, unexpected,
      #list > 0 and table.concat(list, ",") or "none",
      e.connect + e.read + e.write + e.timeout))
end
