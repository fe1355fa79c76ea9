/**
 * A list of the rooms the reader is in, each with its number of unread messages: the sidebar of
 * the chat, and "Your rooms" on the entry page.
 */
import { el } from "./dom.js";
import type { Strings } from "./i18n.js";

export interface RoomListItem {
  room: string;
  unread: number;
}

export class RoomList {
  constructor(
    private readonly list: HTMLElement,
    private readonly t: Strings,
    private readonly pick: (room: string) => void,
  ) {}

  render(rooms: readonly RoomListItem[], current: string | undefined): void {
    this.list.replaceChildren(
      ...rooms.map(({ room, unread }) => {
        const button = el("button", "room-tab");
        button.type = "button";
        button.dataset["room"] = room;
        if (room === current) button.setAttribute("aria-current", "page");
        button.append(el("span", "room-name", `# ${room}`));
        if (unread > 0 && room !== current) {
          const badge = el("span", "badge", unread > 99 ? "99+" : String(unread));
          badge.setAttribute("aria-hidden", "true");
          button.title = this.t.unread(unread);
          button.setAttribute("aria-label", `# ${room}, ${this.t.unread(unread)}`);
          button.append(badge);
        }
        button.addEventListener("click", () => this.pick(room));
        const item = el("li");
        item.append(button);
        return item;
      }),
    );
  }
}
