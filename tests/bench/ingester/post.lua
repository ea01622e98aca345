-- post.lua: wrk script posting pre-signed Stripe events (one per line of
-- requests.tsv: "<Stripe-Signature>\t<body>") round-robin.
local reqs = {}
local i = 0

init = function(args)
  local path = args[1] or "requests.tsv"
  for line in io.lines(path) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    if sig then
      reqs[#reqs + 1] = wrk.format("POST", "/webhooks/stripe",
        {["Stripe-Signature"] = sig, ["Content-Type"] = "application/json"}, body)
    end
  end
  -- threads start at different offsets
  i = math.random(#reqs)
end

request = function()
  i = i % #reqs + 1
  return reqs[i]
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
