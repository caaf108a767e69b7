// @ts-check
// Quiet hours and do-not-disturb for this phone (docs/PROTOCOL.md "Quiet hours"): the panel on
// the idle screen, and the settings it sends to the hub with GET/PUT /api/quiet. The hub keeps
// them and leaves a quiet phone out of a ring. The app offers the common case (one nightly
// window, every day, and a do-not-disturb switch with an end); the API takes a full weekly
// schedule.

/**
 * @typedef {{days: number[], start: string, end: string}} QuietWindow
 * @typedef {{utc_offset_min: number, schedule: QuietWindow[], dnd_until_ms: number | null}} QuietSettings
 */

const EVERY_DAY = [0, 1, 2, 3, 4, 5, 6];
const HOUR_MS = 3600 * 1000;

/** This phone's offset from UTC in minutes now (UTC+1 is 60). */
export function utcOffsetMin(now = new Date()) {
  return -now.getTimezoneOffset();
}

/**
 * When a do-not-disturb choice ends, in Unix ms, or null for "off".
 * @param {string} choice "off", "1h", "8h" or "morning" (the next 07:00, local time)
 * @param {Date} now
 */
export function dndUntil(choice, now) {
  switch (choice) {
    case "1h":
      return now.getTime() + HOUR_MS;
    case "8h":
      return now.getTime() + 8 * HOUR_MS;
    case "morning": {
      const end = new Date(now);
      end.setHours(7, 0, 0, 0);
      if (end.getTime() <= now.getTime()) end.setDate(end.getDate() + 1);
      return end.getTime();
    }
    default:
      return null;
  }
}

/**
 * The settings the panel describes.
 * @param {{dnd: string, nightly: boolean, start: string, end: string, keepDnd: number | null}} form
 *   keepDnd: the switch's current end, kept when the choice is "keep"
 * @param {Date} now
 * @returns {QuietSettings}
 */
export function settingsFrom(form, now) {
  const dnd = form.dnd === "keep" ? form.keepDnd : dndUntil(form.dnd, now);
  return {
    utc_offset_min: utcOffsetMin(now),
    schedule: form.nightly ? [{ days: EVERY_DAY, start: form.start, end: form.end }] : [],
    dnd_until_ms: dnd != null && dnd > now.getTime() ? dnd : null,
  };
}

/**
 * One line saying what the settings do now.
 * @param {QuietSettings & {quiet_now?: boolean}} s
 * @param {Date} now
 */
export function describe(s, now) {
  const parts = [];
  if (s.dnd_until_ms != null && s.dnd_until_ms > now.getTime()) {
    const until = new Date(s.dnd_until_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    parts.push(`Do not disturb until ${until}`);
  }
  const w = s.schedule[0];
  if (w) parts.push(`quiet every night ${w.start}–${w.end}`);
  if (parts.length === 0) return "This phone rings for every visitor.";
  const text = parts.join("; ");
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.` + (s.quiet_now ? " Quiet now: this phone does not ring." : "");
}

/** The panel: loads the settings, saves them, keeps the hub's offset current. */
export class QuietPanel {
  /** @type {() => string | null} */
  #token;
  /** @type {number | null} the stored switch's end, for "keep" */
  #dnd = null;

  /** @param {() => string | null} token */
  constructor(token) {
    this.#token = token;
    const form = /** @type {HTMLFormElement | null} */ (document.getElementById("quiet-panel"));
    form?.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.save();
    });
  }

  /** @param {string} id */
  #input(id) {
    return /** @type {HTMLInputElement} */ (document.getElementById(id));
  }

  /** @param {string} text */
  #status(text) {
    const el = document.getElementById("quiet-text");
    if (el) el.textContent = text;
  }

  /**
   * @param {"GET" | "PUT"} method
   * @param {QuietSettings} [body]
   * @returns {Promise<(QuietSettings & {quiet_now: boolean}) | null>}
   */
  async #call(method, body) {
    const token = this.#token();
    if (!token) return null;
    try {
      const res = await fetch("/api/quiet", {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const reply = await res.json();
      if (!res.ok) {
        this.#status(`Not saved: ${reply.error ?? res.status}`);
        return null;
      }
      return reply;
    } catch (e) {
      this.#status("Quiet hours: the hub is unreachable.");
      return null;
    }
  }

  /** @param {QuietSettings & {quiet_now: boolean}} s */
  #show(s) {
    this.#dnd = s.dnd_until_ms;
    const active = s.dnd_until_ms != null && s.dnd_until_ms > Date.now();
    const select = /** @type {HTMLSelectElement} */ (/** @type {unknown} */ (this.#input("quiet-dnd")));
    select.value = active ? "keep" : "off";
    const w = s.schedule[0];
    this.#input("quiet-nightly").checked = !!w;
    if (w) {
      this.#input("quiet-start").value = w.start;
      this.#input("quiet-end").value = w.end;
    }
    this.#status(describe(s, new Date()));
  }

  /** Reads the settings; if the phone's UTC offset changed since they were saved (travel,
   * daylight saving), saves them again with the new one. */
  async load() {
    const s = await this.#call("GET");
    if (!s) return;
    const offset = utcOffsetMin();
    const set = s.schedule.length > 0 || s.dnd_until_ms != null;
    if (set && s.utc_offset_min !== offset) {
      const again = await this.#call("PUT", { utc_offset_min: offset, schedule: s.schedule, dnd_until_ms: s.dnd_until_ms });
      if (again) this.#show(again);
      return;
    }
    this.#show(s);
  }

  async save() {
    const select = /** @type {HTMLSelectElement} */ (/** @type {unknown} */ (this.#input("quiet-dnd")));
    const settings = settingsFrom(
      {
        dnd: select.value,
        nightly: this.#input("quiet-nightly").checked,
        start: this.#input("quiet-start").value || "22:00",
        end: this.#input("quiet-end").value || "07:00",
        keepDnd: this.#dnd,
      },
      new Date(),
    );
    const saved = await this.#call("PUT", settings);
    if (saved) this.#show(saved);
  }
}
