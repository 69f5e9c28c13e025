-- wrk script: redeems pre-minted authorization codes at the token endpoint, each once.
-- wrk -t2 -c32 -d30s -s bench/token.lua http://127.0.0.1:8080/token -- CODES CLIENT SECRET REDIRECT
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function b64(data)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((data:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

function init(args)
  local file, client, secret, redirect = args[1], args[2], args[3], args[4]
  codes, n = {}, 0
  local i = 0
  for line in io.lines(file) do
    -- Threads share the file: each takes every `nthreads`-th line (ids 0..).
    if i % 2 == id then
      local code, verifier = line:match("(%S+) (%S+)")
      n = n + 1
      codes[n] = "grant_type=authorization_code&code=" .. urlencode(code)
        .. "&redirect_uri=" .. urlencode(redirect) .. "&code_verifier=" .. urlencode(verifier)
    end
    i = i + 1
  end
  next_code = 0
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. b64(urlencode(client) .. ":" .. urlencode(secret)),
  }
end

function request()
  next_code = next_code + 1
  if next_code > n then
    wrk.thread:stop()
    next_code = n
  end
  return wrk.format("POST", nil, headers, codes[next_code])
end

function done(summary, latency, requests)
  io.write(string.format("wrk | token endpoint | %d requests, %d non-2xx | %.0f/s | p50 %.2f ms | p99 %.2f ms\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
