/**
 * Times and days of messages in the reader's own locale (the browser's default): "9:05 AM",
 * "上午9:05" (the hour without a leading zero), and day separators that say "Today", "Yesterday" or
 * the date.
 */
import type { Strings } from "./i18n.js";

const locale = new Intl.DateTimeFormat().resolvedOptions().locale;
// Chinese locales default to a 24-hour clock ("16:05"); chat apps there write "下午4:05".
const time = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", ...(/^zh\b/i.test(locale) ? { hour12: true } : {}) });
const dateThisYear = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const dateOtherYear = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

export const timeText = (ts: number): string => time.format(ts);

/** The date and time in full, for a tooltip. */
export const fullTimeText = (ts: number): string => full.format(ts);

/** The local calendar day of `ts`, as a key: two times of one day have the same key. */
export function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** "Today", "Yesterday" or the date, for the day of `ts` seen at `now`. */
export function dayLabel(ts: number, now: number, t: Strings): string {
  const key = dayKey(ts);
  if (key === dayKey(now)) return t.today;
  const yesterday = new Date(now);
  yesterday.setDate(yesterday.getDate() - 1);
  if (key === dayKey(yesterday.getTime())) return t.yesterday;
  const sameYear = new Date(ts).getFullYear() === new Date(now).getFullYear();
  return (sameYear ? dateThisYear : dateOtherYear).format(ts);
}

/** Milliseconds from `now` to the next local midnight: when "Today" becomes "Yesterday". */
export function untilMidnight(now: number): number {
  const next = new Date(now);
  next.setHours(24, 0, 0, 0);
  return next.getTime() - now;
}
