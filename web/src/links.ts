/**
 * Finds the web links in a message's text: `http://` and `https://` URLs and bare `www.` hosts.
 * Only these two schemes ever become links: `javascript:`, `data:` and every other scheme stay
 * plain text. Pure string work; the log builds the DOM nodes (never HTML) from the pieces.
 */

export interface TextPiece {
  text: string;
  /** Set on a link: the address it opens (always http: or https:). */
  href?: string;
}

/**
 * A link starts at `http(s)://` or `www.` that does not follow a letter, digit or one of `_ @ . / -`
 * of ASCII (so `bob@www.example.com` and `xhttp://` are not links, but `看这里https://…` is), and
 * runs to white space, `< > "` or full-width punctuation (`，。` and the like end a link in Chinese
 * text).
 */
const CANDIDATE = /(?<![A-Za-z0-9_@./-])(?:https?:\/\/|www\.)[^\s<>"\u3000-\u303f\uff00-\uffef]+/giu;

/** Punctuation that ends a sentence rather than a URL when it is a link's last character. */
const TRAILING = new Set([".", ",", ":", ";", "!", "?", "'", "*"]);
const CLOSERS: Record<string, string> = { ")": "(", "]": "[", "}": "{" };

const count = (text: string, char: string) => text.split(char).length - 1;

/** `url` without trailing punctuation, and without a closing bracket that it did not open. */
function trimEnd(url: string): string {
  for (;;) {
    const last = url.at(-1) ?? "";
    const opener = CLOSERS[last];
    if (TRAILING.has(last) || (opener !== undefined && count(url, opener) < count(url, last))) url = url.slice(0, -1);
    else return url;
  }
}

/** The address a candidate opens, or undefined when it is not a usable http(s) link. */
function hrefOf(candidate: string): string | undefined {
  const bare = /^www\./i.test(candidate);
  // a bare host needs a name after "www." and a dot in it ("www.example.com", not "www.")
  if (bare && !/^www\.[^./?#]+\.[^./?#]/i.test(candidate)) return undefined;
  try {
    const url = new URL(bare ? `https://${candidate}` : candidate);
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") return undefined;
    return url.href;
  } catch {
    return undefined;
  }
}

/** `text` cut into plain pieces and links, in order; joined, the pieces' texts are `text`. */
export function findLinks(text: string): TextPiece[] {
  const pieces: TextPiece[] = [];
  let plainFrom = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index;
    const candidate = trimEnd(match[0]);
    const href = hrefOf(candidate);
    if (href === undefined) continue;
    if (start > plainFrom) pieces.push({ text: text.slice(plainFrom, start) });
    pieces.push({ text: candidate, href });
    plainFrom = start + candidate.length;
  }
  if (plainFrom < text.length) pieces.push({ text: text.slice(plainFrom) });
  return pieces;
}
