-- wrk script: GET one Dataplane repeatedly (path given on the wrk command
-- line). Prints one key=value line at the end (parsed by bench/run.sh).
function done(summary, latency, requests)
	local errs = summary.errors.connect + summary.errors.read + summary.errors.write +
		summary.errors.status + summary.errors.timeout
	io.write(string.format("RESULT requests=%d seconds=%.3f rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
		summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
		latency:percentile(50), latency:percentile(99), errs))
end
