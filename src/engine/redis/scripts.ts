/**
 * The Lua scripts of the Redis engine. Each runs atomically on the Redis server; ioredis sends
 * them by EVALSHA and falls back to EVAL after a Redis restart (NOSCRIPT).
 *
 * Time comes from Redis (`TIME`), not from the processes, so that machines with skewed clocks agree
 * on which nodes are alive.
 */

/**
 * Appends a message to the room's history stream and publishes it on the room's channel, in one
 * atomic step: subscribers receive a room's messages in the order of their stream ids, and a
 * message is in the history exactly when it was published.
 * KEYS[1] stream. ARGV: maxlen, username, text, ts, channel, frame head, frame tail, ttl ms (0: none).
 * The published frame is head .. id .. tail: the JSON of the event, built by the caller around
 * the id that only Redis knows, so no JSON is parsed or built in Lua. With a ttl (--history-ttl),
 * every message renews the stream's expiry: a room where nothing is said for that long loses its
 * history.
 */
export const PUBLISH_MESSAGE = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'u', ARGV[2], 't', ARGV[3], 'ts', ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6] .. id .. ARGV[7])
if ARGV[8] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[8]) end
return id
`;

/**
 * History for a client that has seen nothing (since "0-0"): is the first message the room ever
 * had still kept? Returns { messages added to the stream ever, messages kept } (0, 0 when there is
 * no stream). KEYS[1] stream.
 */
export const HISTORY_COUNTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return { 0, 0 } end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local added, length = 0, 0
for i = 1, #info, 2 do
  if info[i] == 'entries-added' then added = info[i + 1] elseif info[i] == 'length' then length = info[i + 1] end
end
return { added, length }
`;

/**
 * A room's presence version (KEYS[3] in the presence scripts) is deleted when the room empties,
 * so an empty room keeps no key. It must still only grow, or a client could take an old
 * presence_diff for a new one: a new version starts from Redis's clock in microseconds, above
 * any version the room had before (a room would need more than one presence change per
 * microsecond on average over its life to catch up with the clock).
 */
const BUMP_VERSION = `
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCR', key)
end
`;

/**
 * Every change of a room's presence increments its version key, so that a snapshot (PRESENCE_LIST)
 * and the `presence_diff` notices (PRESENCE_CHANGE) can be ordered against each other.
 * KEYS[1] presence hash, KEYS[2] rooms set, KEYS[3] version. ARGV: field, username, room.
 */
export const PRESENCE_ADD = `${BUMP_VERSION}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
bump(KEYS[3])
return 1
`;

/** KEYS[1] presence hash, KEYS[2] rooms set, KEYS[3] version. ARGV: field, room. */
export const PRESENCE_REMOVE = `${BUMP_VERSION}
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then bump(KEYS[3]) end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('DEL', KEYS[3])
end
return 1
`;

/**
 * A batch of one process's presence changes in a big room, applied and published as one
 * presence_diff notice in one atomic step. The notice is head .. version .. tail (JSON built by
 * the caller, as in PUBLISH_MESSAGE).
 * KEYS[1] presence hash, KEYS[2] rooms set, KEYS[3] version.
 * ARGV: room, channel, head, tail, number of joined, then joined field/username pairs, then left fields.
 */
export const PRESENCE_CHANGE = `${BUMP_VERSION}
local joined = tonumber(ARGV[5])
local i = 6
for _ = 1, joined do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  i = i + 1
end
local version = bump(KEYS[3])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
else
  redis.call('SADD', KEYS[2], ARGV[1])
end
-- %d: a Lua number above 10^14 would otherwise print as 1.7e+15
redis.call('PUBLISH', ARGV[2], ARGV[3] .. string.format('%d', version) .. ARGV[4])
return version
`;

/**
 * Lists the usernames present in a room (one entry per connection), dropping the entries of
 * nodes whose heartbeat expired. Fields are "<node>/<member>". Returns { version, usernames }.
 * KEYS[1] presence hash, KEYS[2] nodes zset (node → expiry ms), KEYS[3] rooms set, KEYS[4] version.
 * ARGV: room.
 */
export const PRESENCE_LIST = `${BUMP_VERSION}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
local dropped = false
local alive = {}
for i = 1, #all, 2 do
  local field = all[i]
  local node = string.match(field, '^(.-)/')
  local ok = alive[node]
  if ok == nil then
    local expiry = redis.call('ZSCORE', KEYS[2], node)
    ok = (expiry ~= false and expiry ~= nil and tonumber(expiry) > now)
    alive[node] = ok
  end
  if ok then out[#out + 1] = all[i + 1] else redis.call('HDEL', KEYS[1], field); dropped = true end
end
local version
if dropped then version = bump(KEYS[4]) else version = tonumber(redis.call('GET', KEYS[4]) or '0') end
if #out == 0 then
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[4])
end
return { version, out }
`;

/**
 * Marks a node alive until now + ttl and records its connection count.
 * KEYS[1] nodes zset, KEYS[2] connections hash. ARGV: node, ttl ms, connections.
 */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`;

/**
 * Counts live nodes and their connections; forgets nodes whose heartbeat expired.
 * KEYS[1] nodes zset, KEYS[2] connections hash. Returns { nodes, connections }.
 */
export const STATS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(dead) do redis.call('HDEL', KEYS[2], node) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local connections = 0
for _, node in ipairs(live) do
  connections = connections + (tonumber(redis.call('HGET', KEYS[2], node)) or 0)
end
return { #live, connections }
`;

/** KEYS[1] nodes zset, KEYS[2] connections hash. ARGV: node. */
export const NODE_REMOVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;
