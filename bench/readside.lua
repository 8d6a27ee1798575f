-- readside.lua - a wrk script for bench/readside: the same GET on every request (wrk's own
-- request, with the -H headers), and at the end one line "WRKJSON " and a JSON object:
-- requests answered, seconds, requests per second, latency percentiles in milliseconds,
-- socket errors and answers with a status of 400 or more.
-- Part of gokart-exchange; MIT licence.

function done(summary, latency, requests)
    local seconds = summary.duration / 1e6
    io.write(string.format(
        'WRKJSON {"requests": %d, "seconds": %.3f, "requests_per_second": %.1f, '
        .. '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, '
        .. '"mean": %.3f}, "bytes": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
        .. '"timeout": %d, "status": %d}}\n',
        summary.requests, seconds, summary.requests / seconds,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
        summary.bytes, summary.errors.connect, summary.errors.read, summary.errors.write,
        summary.errors.timeout, summary.errors.status))
end
