/**
 * The Redis engine's keys and channels (`<p>` is the prefix, `roomcast:` by default):
 *
 *   <p>history:<room>            stream of the room's messages (XADD … MAXLEN ~ historySize)
 *   <p>deleted:<room>            set of deleted message ids still within the kept span
 *   <p>room:<room>               channel of the room: messages, notices, presence diffs, kicks
 *   <p>presence:<room>           hash "<node>/<member>" → the entry's JSON, one field per connection
 *   <p>presence-version:<room>   counter of the room's presence changes (orders snapshots and diffs)
 *   <p>ban:<room>:<user>         a ban, expiring when it ends
 *   <p>nodes                     zset node → expiry (ms, Redis clock), renewed by each heartbeat
 *   <p>connections               hash node → open connections
 *   <p>reaping                   zset of dead nodes being taken out of presence → lease expiry
 *   <p>node-rooms:<node>         set of rooms where the node has members
 *
 * On a Redis Cluster every key of a room carries the room as its hash tag (`history:{tea}`) and the
 * node registry carries `{nodes}`, so that each script's keys live on one shard; on one Redis or
 * Sentinel the names stay as they always were (no migration for existing data).
 */
export interface RedisKeys {
  history(room: string): string;
  deleted(room: string): string;
  channel(room: string): string;
  presence(room: string): string;
  version(room: string): string;
  ban(room: string, user: string): string;
  /** The room of a channel name, or undefined when it is not a room channel of this prefix. */
  roomOfChannel(channel: string): string | undefined;
  /** SCAN pattern of presence hashes, and the room of one. */
  presencePattern: string;
  roomOfPresence(key: string): string | undefined;
  nodes: string;
  connections: string;
  reaping: string;
  nodeRooms(node: string): string;
}

export function redisKeys(prefix: string, hashTags: boolean): RedisKeys {
  // The prefix is used inside SCAN patterns: escape glob characters.
  const glob = prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  const tag = hashTags ? (room: string) => `{${room}}` : (room: string) => room;
  const untag = hashTags ? (s: string) => (s.startsWith("{") && s.endsWith("}") ? s.slice(1, -1) : undefined) : (s: string) => s;
  const registry = hashTags ? `${prefix}{nodes}` : prefix;
  const channelPrefix = `${prefix}room:`;
  const presencePrefix = `${prefix}presence:`;
  return {
    history: (room) => `${prefix}history:${tag(room)}`,
    deleted: (room) => `${prefix}deleted:${tag(room)}`,
    channel: (room) => `${channelPrefix}${tag(room)}`,
    presence: (room) => `${presencePrefix}${tag(room)}`,
    version: (room) => `${prefix}presence-version:${tag(room)}`,
    // the user id percent-encoded: a room id may hold ":" and so may a user id; encoded, the user
    // part holds none, so `team` + `org:alice` and `team:org` + `alice` are two keys
    ban: (room, user) => `${prefix}ban:${tag(room)}:${encodeURIComponent(user)}`,
    roomOfChannel: (channel) => (channel.startsWith(channelPrefix) ? untag(channel.slice(channelPrefix.length)) : undefined),
    presencePattern: `${glob}presence:*`,
    roomOfPresence: (key) => (key.startsWith(presencePrefix) ? untag(key.slice(presencePrefix.length)) : undefined),
    nodes: hashTags ? `${registry}` : `${prefix}nodes`,
    connections: hashTags ? `${registry}:connections` : `${prefix}connections`,
    reaping: hashTags ? `${registry}:reaping` : `${prefix}reaping`,
    nodeRooms: (node) => (hashTags ? `${registry}:rooms:${node}` : `${prefix}node-rooms:${node}`),
  };
}
