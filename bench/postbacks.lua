-- postbacks.lua - a wrk script that sends an exact number of distinct, valid AppsFlyer
-- purchase postbacks to an advertiser node's postback endpoint and checks every answer.
-- Part of gokart-exchange; MIT licence.
--
-- usage: wrk -t T -c C -d LIMIT -s bench/postbacks.lua http://HOST:PORT/postback \
--            -- TOKEN SHORTS_FILE COUNT T EVENT_TIME TAG MARKS
-- SHORTS_FILE holds the partnerships' short ids, one a line; postback i goes to short id
-- i mod their number. Thread k sends its share of COUNT (postbacks k, k+T, k+2T, ...), each
-- with its own click id and transaction id (TAG keeps two runs apart) and event time
-- EVENT_TIME (Unix seconds). wrk calls delay() before each request of a connection; it arms
-- one request while the share is not all sent, and parks the connection once it is. A
-- request() call that was not armed (wrk calls request() once outside the run, to check the
-- script, and again for a connection it reopens) gets a filler, /postback/bench-filler,
-- which the node answers 404 (an unknown MMP) without touching its store. A thread stops
-- when each of its postbacks was answered; it creates MARKS/start-K when it makes its first
-- postback and MARKS/end-K when the last one is answered, so that the caller reads the times
-- from their mtimes (wrk's own duration is always its -d: its main thread sleeps that long;
-- the caller sends SIGINT once every end-K exists). done() prints one line: "WRKJSON " and a
-- JSON object: `valid` counts 200 answers saying "duplicate": false; every other answer to a
-- postback counts in `bad` (the first is kept in `bad_sample`).

local threads = {}

function setup(thread)
    thread:set("index", #threads)
    table.insert(threads, thread)
end

function init(args)
    token = args[1]
    shorts = {}
    for line in io.lines(args[2]) do
        if #line > 0 then
            table.insert(shorts, line)
        end
    end
    local count = tonumber(args[3])
    nthreads = tonumber(args[4])
    event_time = args[5]
    tag = args[6]
    quota = math.floor(count / nthreads)
    if index < count % nthreads then
        quota = quota + 1
    end
    sent, armed, fillers, answered, valid, bad = 0, 0, 0, 0, 0, 0
    bad_sample = ""
    base = wrk.path
    marks = args[7]
end

-- Creates the file MARKS/name (its mtime is the time).
function mark(name)
    local f = io.open(marks .. "/" .. name .. "-" .. index, "w")
    f:close()
end

function delay()
    if sent + armed >= quota then
        return 3600000
    end
    armed = armed + 1
    return 0
end

function request()
    if armed == 0 then
        fillers = fillers + 1
        return wrk.format("GET", base .. "/bench-filler?t=" .. token)
    end
    armed = armed - 1
    local i = index + sent * nthreads
    if sent == 0 then
        mark("start")
    end
    sent = sent + 1
    local short = shorts[(i % #shorts) + 1]
    local path = base .. "/appsflyer?p=" .. short .. "&t=" .. token
        .. "&clickid=clk-" .. tag .. "-" .. i
        .. "&appsflyer_id=" .. tag .. "-" .. i
        .. "&event_name=purchase&event_time=" .. event_time
        .. "&event_revenue=1.50&event_revenue_currency=USD&country_code=US&platform=ios"
        .. "&af_sub1=bench"
    return wrk.format("GET", path)
end

function response(status, headers, body)
    if status == 404 and string.find(body, "bench-filler", 1, true) then
        return
    end
    answered = answered + 1
    if status == 200 and string.find(body, '"duplicate": *false') then
        valid = valid + 1
    else
        bad = bad + 1
        if #bad_sample == 0 then
            bad_sample = status .. " " .. string.sub(body, 1, 200)
        end
    end
    if answered >= quota then
        mark("end")
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local v, b, f, s = 0, 0, 0, 0
    local sample = ""
    for _, t in ipairs(threads) do
        v = v + t:get("valid")
        b = b + t:get("bad")
        f = f + t:get("fillers")
        s = s + t:get("sent")
        if #sample == 0 then
            sample = t:get("bad_sample")
        end
    end
    io.write(string.format(
        'WRKJSON {"sent": %d, "valid": %d, "bad": %d, "fillers": %d, '
        .. '"latency_ms": {"p50": %.3f, "p99": %.3f, "max": %.3f}, '
        .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
        .. '"bad_sample": "%s"}\n',
        s, v, b, f, latency:percentile(50) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000, summary.errors.connect,
        summary.errors.read, summary.errors.write, summary.errors.timeout,
        (string.gsub(sample, '[%c"\\]', "?"))))
end
