-- wrk script: PUT (update) Dataplanes dp-0..dp-(N-1) round robin, N from
-- the environment (BENCH_N, default 10000). Each wrk thread starts at its own
-- offset. Prints one key=value line at the end (parsed by bench/run.sh).
local n = tonumber(os.getenv("BENCH_N") or "10000")
local threads = {}
local counter = 0

function setup(thread)
	thread:set("id", #threads)
	table.insert(threads, thread)
end

function init(args)
	counter = id * 7919
end

local function body(i)
	return string.format('{"type":"Dataplane","mesh":"default","name":"dp-%d",' ..
		'"labels":{"kuma.io/workload":"svc-%d"},"networking":{"address":"10.%d.%d.%d",' ..
		'"inbound":[{"port":8080,"protocol":"http"}]}}',
		i, i % 100, math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
end

function request()
	local i = counter % n
	counter = counter + 1
	return wrk.format("PUT", "/meshes/default/dataplanes/dp-" .. i,
		{["Content-Type"] = "application/json"}, body(i))
end

function done(summary, latency, requests)
	local errs = summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.status + summary.errors.timeout
	io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
		summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
		latency:percentile(50), latency:percentile(99), errs))
end
