/**
 * Lengths of names as a person counts them: in grapheme clusters (`Intl.Segmenter`), so that 👍🏽
 * or 👨‍👩‍👧 is one character, as the server counts a username's length.
 */
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

export function graphemeLength(text: string): number {
  let n = 0;
  for (const _ of graphemes.segment(text)) n++;
  return n;
}

/** The first `max` grapheme clusters of `text` (all of it when it is not longer). */
export function firstGraphemes(text: string, max: number): string {
  let n = 0;
  for (const { index } of graphemes.segment(text)) {
    if (n++ === max) return text.slice(0, index);
  }
  return text;
}
