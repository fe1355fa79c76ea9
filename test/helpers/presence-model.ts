/**
 * What a member believes is present, from what was pushed to it: its `presence` snapshot, then
 * every `join`, `broadcast_quit` and `presence_diff` with a newer version (username → connections).
 * A test's own model of the protocol, independent of the client SDK's.
 */
import type { ServerMessage } from "../../src/protocol.js";

export function believedPresence(inbox: readonly ServerMessage[]): Map<string, number> {
  const model = new Map<string, number>();
  let version = 0;
  const add = (name: string, n: number) => {
    model.set(name, (model.get(name) ?? 0) + n);
    if (model.get(name) === 0) model.delete(name);
  };
  for (const m of inbox) {
    if (m.event === "presence") {
      version = m.data.version ?? 0;
      model.clear();
      for (const u of m.data.users) model.set(u.username, u.connections);
    } else if (m.event === "presence_diff" && m.data.version > version) {
      version = m.data.version;
      for (const r of m.data.joined) add(r.username, 1);
      for (const r of m.data.left) add(r.username, -1);
    } else if ((m.event === "join" || m.event === "broadcast_quit") && (m.data.version ?? 0) > version) {
      version = m.data.version!;
      add(m.data.username, m.event === "join" ? 1 : -1);
    }
  }
  return model;
}
