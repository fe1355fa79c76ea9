/**
 * A message's text as DOM nodes: plain text, links (see links.ts) and mentions of the reader
 * (`@name`), each built with createElement and textContent, so that no user text is ever parsed
 * as markup.
 */
import { findLinks } from "./links.js";

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * `@name` as a mention: not right after an ASCII letter or digit (so `bob@ann.org` mentions
 * nobody) and not followed by one (so `@anna` does not mention `ann`); letter case is ignored.
 * Chinese text needs no spaces around it: `谢谢@小明` mentions 小明.
 */
function mentionPattern(name: string): RegExp {
  return new RegExp(`(?<![A-Za-z0-9_.])@${escapeRegExp(name)}(?![A-Za-z0-9_])`, "giu");
}

/** Whether `text` mentions `name`. */
export function mentions(text: string, name: string): boolean {
  return name !== "" && mentionPattern(name).test(text);
}

function plainWithMentions(text: string, me: string): Node[] {
  const nodes: Node[] = [];
  let from = 0;
  for (const match of me === "" ? [] : text.matchAll(mentionPattern(me))) {
    if (match.index > from) nodes.push(document.createTextNode(text.slice(from, match.index)));
    const mark = document.createElement("mark");
    mark.className = "mention";
    mark.textContent = match[0];
    nodes.push(mark);
    from = match.index + match[0].length;
  }
  if (from < text.length) nodes.push(document.createTextNode(text.slice(from)));
  return nodes;
}

/** The nodes that show `text` to the reader called `me`. */
export function messageTextNodes(text: string, me: string): Node[] {
  return findLinks(text).flatMap((piece) => {
    if (piece.href === undefined) return plainWithMentions(piece.text, me);
    const link = document.createElement("a");
    link.href = piece.href;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    link.textContent = piece.text;
    return [link];
  });
}
