/** What an empty room shows: how to bring people in, with its link and a button that copies it. */
import { el } from "./dom.js";
import type { Strings } from "./i18n.js";

/** The address that opens `room` on this server: what "Copy link" puts on the clipboard. */
export const roomUrl = (room: string): string => new URL(`/?room=${encodeURIComponent(room)}`, location.href).href;

/**
 * Copies `text`. The Clipboard API needs a secure context (https, or localhost); elsewhere (a
 * server reached by its LAN address over http) the old copy command on the selected field does it.
 */
async function copy(text: string, field: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    field.select();
    return document.execCommand("copy");
  }
}

export function inviteLine(room: string, t: Strings): HTMLLIElement {
  const line = el("li", "invite");
  const url = roomUrl(room);
  const field = el("input", "invite-url");
  field.readOnly = true;
  field.value = url;
  field.setAttribute("aria-label", t.copyLink);
  field.addEventListener("focus", () => field.select());
  const button = el("button", "copy-link", t.copyLink);
  button.type = "button";
  const status = el("span", "copy-status");
  status.setAttribute("role", "status");
  button.addEventListener("click", () => {
    void copy(url, field).then((done) => (status.textContent = done ? t.copied : ""));
  });
  const row = el("div", "invite-row");
  row.append(field, button);
  line.append(el("p", undefined, t.emptyRoom), row, status);
  return line;
}
