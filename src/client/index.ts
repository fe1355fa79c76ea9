/**
 * `roomcast/client`: connect an application's page (or a Node program) to a roomcast room.
 *
 *   import { connect } from 'roomcast/client';
 *   const chat = connect("https://chat.example", { room: "tea", token: () => fetchToken() });
 *   chat.on("message", (m) => show(m));
 *   await chat.join();
 *   const id = await chat.say("hello");
 *
 * Recovery is built in: after every reconnect the client joins with `since`, and the application
 * gets each message once, in order.
 */
import { RoomcastClient, type ConnectOptions } from "./client.js";

export { RoomcastClient, RoomcastError, type Arrival, type ClientEvents, type ClientState, type ConnectOptions, type Outgoing } from "./client.js";
export type { ChatMessage, ErrorCode, PresenceRef, PresenceUser } from "../protocol.js";
/** The key that tells users apart (the token's `sub`, else the username): compare with `client.me`. */
export { userKey } from "../protocol.js";

/**
 * Connects to the room at `url` (the roomcast server or the nginx in front of it; in a page
 * served by roomcast itself, `undefined`: the page's own origin). Joins at once unless
 * `autoJoin: false`.
 */
export function connect(url: string | undefined, options: ConnectOptions): RoomcastClient {
  return new RoomcastClient(url, options);
}
