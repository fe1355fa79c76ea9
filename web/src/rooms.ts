/**
 * The rooms the reader is in, remembered in the browser (localStorage) across reloads, each with
 * the nickname it was entered with ("" on a server with tokens, where the name is the token's).
 * Only well-formed entries are read back: the storage is the user's to edit.
 */
import { ROOM_ID } from "../../src/protocol.js";

export interface RoomEntry {
  room: string;
  nickname: string;
}

const KEY = "roomcast.rooms";

export function loadRooms(): RoomEntry[] {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    if (!Array.isArray(stored)) return [];
    const rooms: RoomEntry[] = [];
    for (const entry of stored as unknown[]) {
      if (typeof entry !== "object" || entry === null) continue;
      const { room, nickname } = entry as Record<string, unknown>;
      if (typeof room !== "string" || typeof nickname !== "string" || !ROOM_ID.test(room) || (nickname !== "" && nickname.trim() === "")) continue;
      if (!rooms.some((r) => r.room === room)) rooms.push({ room, nickname });
    }
    return rooms;
  } catch {
    return [];
  }
}

export function saveRooms(rooms: readonly RoomEntry[]): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(rooms.map(({ room, nickname }) => ({ room, nickname }))));
  } catch {
    // storage full or forbidden (private mode): the rooms are simply not remembered
  }
}
