/**
 * The Lua scripts of the Redis engine. Each runs atomically on the Redis server holding its keys;
 * ioredis sends them by EVALSHA and falls back to EVAL after a restart or on a node that never saw
 * them (NOSCRIPT). Every key a script touches is in KEYS — the room's channel too — and a room's
 * keys share its hash tag on a Redis Cluster (keys.ts), so each script runs on the room's shard.
 * The publishing command comes in ARGV: PUBLISH on one Redis or Sentinel, SPUBLISH (sharded
 * pub/sub) on a Cluster.
 *
 * JSON for members is built by the caller around the values only Redis knows (a message id, a
 * presence version), so no JSON is parsed in Lua. Time comes from Redis (`TIME`), not from the
 * processes, so that machines with skewed clocks agree on which nodes are alive.
 */
import type { Result } from "ioredis";

/**
 * A room's presence version is deleted when the room empties, so an empty room keeps no key. It
 * must still only grow, or a client could take an old presence_diff for a new one: a new version
 * starts from Redis's clock in microseconds, above any version the room had before (a room would
 * need more than one presence change per microsecond on average over its life to catch up with
 * the clock). `fmt` prints such a number whole (Lua prints numbers above 10^14 as 1.7e+15).
 */
const HELPERS = `
local function bump(key)
  if redis.call('EXISTS', key) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return redis.call('INCR', key)
end
local function fmt(n) return string.format('%d', n) end
`;

/**
 * Appends a message to the room's history stream and publishes it on the room's channel, in one
 * atomic step: subscribers receive a room's messages in the order of their stream ids, and a
 * message is in the history exactly when it was published.
 * KEYS: stream, deleted ids (zset), channel.
 * ARGV: maxlen, username, text, ts, user id ('' without tokens), frame head, frame tail, ttl ms
 * (0: none), publish command. The frame is head .. id .. tail. With a ttl (--history-ttl) every
 * message renews the expiry: a room where nothing is said for that long loses its history.
 *
 * While the room has deleted ids, trimming is exact (MAXLEN, not ~) and this script knows the
 * newest entry it trims: a deleted id older than that has lost a message after it, so it is no
 * longer a known position (recovering from it is `truncated`); a deleted id newer than every
 * trimmed entry still is. Without deleted ids the cheaper approximate trim is kept.
 */
const PUBLISH_MESSAGE = `
local function seq(id) return tonumber(string.match(id, '-(%d+)$')) end
local function ms(id) return string.match(id, '^(%d+)') end
local id
local lastTrimmed
if redis.call('EXISTS', KEYS[2]) == 1 then
  local over = redis.call('XLEN', KEYS[1]) + 1 - tonumber(ARGV[1])
  if over > 0 then
    local gone = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', over)
    if #gone > 0 then lastTrimmed = gone[#gone][1] end
  end
  if ARGV[5] == '' then
    id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'u', ARGV[2], 't', ARGV[3], 'ts', ARGV[4])
  else
    id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'u', ARGV[2], 't', ARGV[3], 'ts', ARGV[4], 'i', ARGV[5])
  end
  if lastTrimmed then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ms(lastTrimmed))
    for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], ms(lastTrimmed), ms(lastTrimmed))) do
      if seq(d) <= seq(lastTrimmed) then redis.call('ZREM', KEYS[2], d) end
    end
  end
elseif ARGV[5] == '' then
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'u', ARGV[2], 't', ARGV[3], 'ts', ARGV[4])
else
  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'u', ARGV[2], 't', ARGV[3], 'ts', ARGV[4], 'i', ARGV[5])
end
redis.call(ARGV[9], KEYS[3], ARGV[6] .. id .. ARGV[7])
if ARGV[8] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
return id
`;

/**
 * Removes a message and tells the room, in one step. Its id is kept in the room's deleted ids
 * (a zset scored by the id's milliseconds; pruned by PUBLISH_MESSAGE when trimming passes it) so
 * that a client recovering with `since` = that id still counts as having a known position.
 * KEYS: stream, deleted ids, channel. ARGV: id, frame, publish command. Returns 1, or 0 when the
 * history holds no such message.
 */
const DELETE_MESSAGE = `
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], string.match(ARGV[1], '^(%d+)'), ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call(ARGV[3], KEYS[3], ARGV[2])
return 1
`;

/**
 * The history after `since`, and whether `since` is a known position. Returns
 * { truncated (0/1), entries }.
 * KEYS: stream, deleted ids. ARGV: since, '1' when something may follow since (it is not the
 * largest id: Redis refuses an exclusive range starting there).
 * since "0-0": every kept entry, truncated when the first messages the room ever had are gone
 * (entries added > kept + deleted).
 */
const HISTORY_SINCE = `
local since = ARGV[1]
if since == '0-0' then
  if redis.call('EXISTS', KEYS[1]) == 0 then return { 0, {} } end
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local added, length = 0, 0
  for i = 1, #info, 2 do
    if info[i] == 'entries-added' then added = info[i + 1] elseif info[i] == 'length' then length = info[i + 1] end
  end
  local truncated = 0
  if added > length + redis.call('ZCARD', KEYS[2]) then truncated = 1 end
  return { truncated, redis.call('XRANGE', KEYS[1], '-', '+') }
end
local known = #redis.call('XRANGE', KEYS[1], since, since, 'COUNT', 1) > 0 or redis.call('ZSCORE', KEYS[2], since) ~= false
local after = {}
if ARGV[2] == '1' then after = redis.call('XRANGE', KEYS[1], '(' .. since, '+') end
if known then return { 0, after } end
return { 1, after }
`;

/**
 * Adds one connection to a room's presence. With a notice head, the room gets the `join` notice
 * carrying the new version in the same step: head .. version .. tail.
 * KEYS: presence hash, version, channel. ARGV: field, entry JSON, head ('' for none), tail,
 * publish command. Returns the new version.
 */
const PRESENCE_ADD = `${HELPERS}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local v = bump(KEYS[2])
if ARGV[3] ~= '' then redis.call(ARGV[5], KEYS[3], ARGV[3] .. fmt(v) .. ARGV[4]) end
return v
`;

/**
 * Removes one connection; with a notice head the room gets `broadcast_quit` with the version.
 * KEYS: presence hash, version, channel. ARGV: field, head ('' for none), tail, publish command.
 */
const PRESENCE_REMOVE = `${HELPERS}
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  local v = bump(KEYS[2])
  if ARGV[2] ~= '' then redis.call(ARGV[4], KEYS[3], ARGV[2] .. fmt(v) .. ARGV[3]) end
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
return 1
`;

/**
 * A batch of one process's presence changes in a big room, applied and published as one
 * presence_diff in one step: head .. version .. tail.
 * KEYS: presence hash, version, channel.
 * ARGV: head, tail, publish command, number joined, then joined field/entry pairs, then left fields.
 */
const PRESENCE_CHANGE = `${HELPERS}
local joined = tonumber(ARGV[4])
local i = 5
for _ = 1, joined do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  i = i + 1
end
local v = bump(KEYS[2])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
redis.call(ARGV[3], KEYS[3], ARGV[1] .. fmt(v) .. ARGV[2])
return v
`;

/**
 * A room's presence entries (one JSON entry per connection) and version: { version, entries }.
 * KEYS: presence hash, version.
 */
const PRESENCE_LIST = `
return { tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HVALS', KEYS[1]) }
`;

/**
 * Takes a dead process's connections out of one room's presence and tells the room, once: one
 * presence_diff with every such entry in `left`. Idempotent (a second run finds none).
 * KEYS: presence hash, version, channel. ARGV: the dead node's field prefix ("<node>/"), ts,
 * publish command. Returns how many entries it removed.
 */
const REAP_ROOM = `${HELPERS}
local prefix = ARGV[1]
local all = redis.call('HGETALL', KEYS[1])
local left = {}
for i = 1, #all, 2 do
  if string.sub(all[i], 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[1], all[i])
    left[#left + 1] = all[i + 1]
  end
end
if #left == 0 then return 0 end
local v = bump(KEYS[2])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
redis.call(ARGV[3], KEYS[3], '{"event":"presence_diff","data":{"joined":[],"left":[' .. table.concat(left, ',') .. '],"ts":' .. ARGV[2] .. ',"version":' .. fmt(v) .. '}}')
return #left
`;

/**
 * Marks a node alive until now + ttl and records its connection count. Returns 1 when the node
 * was not in the live set (its first beat — or it was declared dead meanwhile: a pause longer
 * than the TTL, and another process took its members out of presence; it must put them back).
 * KEYS: nodes zset, connections hash. ARGV: node, ttl ms, connections.
 * (The node's rooms set has no expiry: whoever reaps a dead node, or the node stopping, deletes it.)
 */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return added
`;

/**
 * Claims the nodes whose heartbeat expired, for this process to take their members out of
 * presence: each dead node is moved from the live set to the reaping set with a lease, so exactly
 * one process claims it; a claim whose lease ran out (its reaper died too) is claimed again.
 * KEYS: nodes zset, connections hash, reaping zset. ARGV: lease ms. Returns the claimed nodes.
 */
const CLAIM_DEAD_NODES = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claimed = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], node)
  redis.call('HDEL', KEYS[2], node)
  claimed[#claimed + 1] = node
end
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do claimed[#claimed + 1] = node end
for _, node in ipairs(claimed) do redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), node) end
return claimed
`;

/**
 * Counts live nodes and their connections (dead ones are left to CLAIM_DEAD_NODES).
 * KEYS: nodes zset, connections hash. Returns { nodes, connections }.
 */
const STATS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local connections = 0
for _, node in ipairs(live) do
  connections = connections + (tonumber(redis.call('HGET', KEYS[2], node)) or 0)
end
return { #live, connections }
`;

/** A node that stops on purpose. KEYS: nodes zset, connections hash, its rooms set. ARGV: node. */
const NODE_REMOVE = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
`;

/** The engine's commands: name → [number of KEYS, Lua]. */
export const SCRIPTS = {
  rcPublishMessage: [3, PUBLISH_MESSAGE],
  rcDeleteMessage: [3, DELETE_MESSAGE],
  rcHistorySince: [2, HISTORY_SINCE],
  rcPresenceAdd: [3, PRESENCE_ADD],
  rcPresenceRemove: [3, PRESENCE_REMOVE],
  rcPresenceChange: [3, PRESENCE_CHANGE],
  rcPresenceList: [2, PRESENCE_LIST],
  rcReapRoom: [3, REAP_ROOM],
  rcHeartbeat: [2, HEARTBEAT],
  rcClaimDeadNodes: [3, CLAIM_DEAD_NODES],
  rcStats: [2, STATS],
  rcNodeRemove: [3, NODE_REMOVE],
} as const;

type Arg = string | number;
type StreamEntries = [id: string, fields: string[]][];

declare module "ioredis" {
  interface RedisCommander<Context> {
    rcPublishMessage(stream: string, deleted: string, channel: string, ...args: Arg[]): Result<string, Context>;
    rcDeleteMessage(stream: string, deleted: string, channel: string, ...args: Arg[]): Result<number, Context>;
    rcHistorySince(stream: string, deleted: string, since: string, more: string): Result<[number, StreamEntries], Context>;
    rcPresenceAdd(hash: string, version: string, channel: string, ...args: Arg[]): Result<number, Context>;
    rcPresenceRemove(hash: string, version: string, channel: string, ...args: Arg[]): Result<number, Context>;
    rcPresenceChange(hash: string, version: string, channel: string, ...args: Arg[]): Result<number, Context>;
    rcPresenceList(hash: string, version: string): Result<[number, string[]], Context>;
    rcReapRoom(hash: string, version: string, channel: string, prefix: string, ts: number, publish: string): Result<number, Context>;
    rcHeartbeat(nodes: string, connections: string, node: string, ttl: number, count: number): Result<number, Context>;
    rcClaimDeadNodes(nodes: string, connections: string, reaping: string, lease: number): Result<string[], Context>;
    rcStats(nodes: string, connections: string): Result<[number, number], Context>;
    rcNodeRemove(nodes: string, connections: string, rooms: string, node: string): Result<number, Context>;
  }
}
