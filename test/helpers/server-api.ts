/** The server API of a roomcast process started with `ROOMCAST_API_KEY`, as an application's backend calls it. */
import assert from "node:assert/strict";

export class ServerApi {
  constructor(
    private readonly url: string,
    private readonly key: string,
  ) {}

  private async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const answer = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(answer)}`);
    return answer;
  }

  /** Posts a message to `room` as `username`; resolves with its id. */
  async post(room: string, username: string, text: string): Promise<string> {
    return (await this.call("POST", `/api/rooms/${encodeURIComponent(room)}/messages`, { username, text }))["id"] as string;
  }

  /** Removes a message from the room's history and from every member's view. */
  async delete(room: string, id: string): Promise<void> {
    await this.call("DELETE", `/api/rooms/${encodeURIComponent(room)}/messages/${id}`);
  }

  /** Closes every connection of `user` in `room`; with `banSeconds`, refuses its joins that long. */
  async kick(room: string, user: string, banSeconds?: number): Promise<void> {
    await this.call("POST", `/api/rooms/${encodeURIComponent(room)}/kick`, banSeconds === undefined ? { user } : { user, ban_seconds: banSeconds });
  }

  /** Who is in `room`, from the (private) read API. */
  async presence(room: string): Promise<{ username: string; user?: string; connections: number }[]> {
    return (await this.call("GET", `/api/rooms/${encodeURIComponent(room)}/presence`))["users"] as { username: string; user?: string; connections: number }[];
  }
}
