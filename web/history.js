// @ts-check
// The history screen: every ring with its snapshot, who answered and for how long, declined,
// missed, missed while the door was offline, unlocks with the phone that unlocked. Paged from
// `GET /api/events?limit=&before=` (docs/PROTOCOL.md "Snapshots and history"); delete one
// ring or all of a door's. `groupHistory` is pure (tested in history.test.mjs); `HistoryView`
// owns the screen's list and its requests, and `dispose()` drops them.

/** Events asked for per page: a screenful of rings (each ring is 1-4 events). */
export const PAGE_SIZE = 40;

/**
 * @typedef {{id: number, at: number, door_id: string, kind: string, call_id?: string,
 *   phone_id?: string, phone_name?: string, reason?: string, duration_ms?: number,
 *   snapshot_id?: number, snapshot?: string, voice_id?: number, voice?: string}} HistoryEvent
 * @typedef {{key: string, id: number, at: number, doorId: string, snapshot: string | null,
 *   outcome: string, unlocks: string[], voice?: string}} HistoryRow
 *   voice: the visitor's voice message (a capability URL of Ogg Opus), when one was left
 */

/** "1:05" for a duration. @param {number} ms */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** @param {HistoryEvent} e @param {string} myPhoneId */
function who(e, myPhoneId) {
  if (e.phone_id && e.phone_id === myPhoneId) return "this phone";
  return e.phone_name || e.phone_id || "another phone";
}

/**
 * One row per ring (its events grouped by call) or missed ring, newest first.
 * @param {HistoryEvent[]} events any order, possibly several pages
 * @param {string} myPhoneId
 * @returns {HistoryRow[]}
 */
export function groupHistory(events, myPhoneId) {
  /** @type {Map<string, HistoryRow>} */
  const rows = new Map();
  const sorted = [...events].sort((a, b) => a.id - b.id);
  for (const e of sorted) {
    if (e.kind === "missed_ring") {
      rows.set(`m/${e.id}`, {
        key: `m/${e.id}`,
        id: e.id,
        at: e.at,
        doorId: e.door_id,
        snapshot: e.snapshot ?? null,
        outcome: "Missed while the door was offline",
        unlocks: [],
        ...(e.voice ? { voice: e.voice } : {}),
      });
      continue;
    }
    if (e.kind === "view") {
      // A live view: who watched the door, without a ring.
      const key = `v/${e.id}`;
      rows.set(key, { key, id: e.id, at: e.at, doorId: e.door_id, snapshot: null, outcome: `Viewed by ${who(e, myPhoneId)}`, unlocks: [] });
      continue;
    }
    if (!e.call_id) continue;
    const key = `c/${e.door_id}/${e.call_id}`;
    let row = rows.get(key);
    if (!row) {
      row = { key, id: e.id, at: e.at, doorId: e.door_id, snapshot: null, outcome: "Ringing", unlocks: [] };
      rows.set(key, row);
    }
    switch (e.kind) {
      case "ring":
        row.id = e.id;
        row.at = e.at;
        row.snapshot = e.snapshot ?? null;
        if (e.voice) row.voice = e.voice;
        break;
      case "answered":
        row.outcome = `Answered by ${who(e, myPhoneId)}`;
        break;
      case "ended":
        row.outcome = `Answered by ${who(e, myPhoneId)}` + (e.duration_ms != null ? `, ${duration(e.duration_ms)}` : "");
        break;
      case "missed":
        row.outcome =
          e.reason === "declined"
            ? "Declined"
            : e.reason === "door_offline"
              ? "Missed (the door went offline)"
              : e.reason === "quiet"
                ? "Not rung (quiet hours)"
                : "Missed";
        break;
      case "unlocked":
        row.unlocks.push(`Unlocked by ${who(e, myPhoneId)}`);
        break;
    }
  }
  return [...rows.values()].sort((a, b) => b.at - a.at || b.id - a.id);
}

/** "14:02, 3 Dec". @param {number} atMs */
function when(atMs) {
  const at = new Date(atMs);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return `${time}, ${at.toLocaleDateString([], { day: "numeric", month: "short" })}`;
}

export class HistoryView {
  /**
   * @param {{token: () => string | null, phoneId: () => string,
   *   doors: () => {door_id: string, name: string}[]}} deps
   */
  constructor(deps) {
    this.deps = deps;
    /** @type {HistoryEvent[]} */
    this.events = [];
    /** @type {number | null} */
    this.nextBefore = null;
    this.abort = new AbortController();
    this.list = /** @type {HTMLElement} */ (document.getElementById("history-list"));
    this.more = /** @type {HTMLButtonElement} */ (document.getElementById("btn-history-more"));
    this.status = /** @type {HTMLElement} */ (document.getElementById("history-status"));
    this.viewer = /** @type {HTMLElement} */ (document.getElementById("snapshot-viewer"));
    this.onMore = () => this.load(this.nextBefore);
    this.onCloseViewer = () => this.closeViewer();
    this.more.addEventListener("click", this.onMore);
    this.viewer.addEventListener("click", this.onCloseViewer);
    this.renderDoors();
    this.load(null);
  }

  /** @param {string} path @param {RequestInit} [init] */
  request(path, init = {}) {
    return fetch(path, {
      ...init,
      signal: this.abort.signal,
      headers: { Authorization: `Bearer ${this.deps.token()}` },
    });
  }

  /** @param {number | null} before */
  async load(before) {
    this.status.textContent = "Loading…";
    try {
      const query = `limit=${PAGE_SIZE}` + (before != null ? `&before=${before}` : "");
      const res = await this.request(`/api/events?${query}`);
      if (!res.ok) throw new Error(`the hub answered ${res.status}`);
      const body = await res.json();
      this.events = before == null ? body.events : [...this.events, ...body.events];
      this.nextBefore = body.next_before ?? null;
      this.status.textContent = this.events.length ? "" : "No rings yet.";
      this.renderList();
    } catch (e) {
      if (this.abort.signal.aborted) return;
      this.status.textContent = `Cannot load the history: ${/** @type {any} */ (e)?.message || e}`;
    }
  }

  /** @param {string} path */
  async remove(path) {
    try {
      const res = await this.request(path, { method: "DELETE" });
      if (!res.ok && res.status !== 404) throw new Error(`the hub answered ${res.status}`);
      await this.load(null);
    } catch (e) {
      if (this.abort.signal.aborted) return;
      this.status.textContent = `Cannot delete: ${/** @type {any} */ (e)?.message || e}`;
    }
  }

  renderDoors() {
    const box = /** @type {HTMLElement} */ (document.getElementById("history-doors"));
    box.replaceChildren();
    for (const d of this.deps.doors()) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn secondary small";
      b.dataset.doorId = d.door_id;
      b.textContent = `Delete all of ${d.name}`;
      b.addEventListener("click", () => {
        if (confirm(`Delete every ring and picture of ${d.name}?`)) {
          this.remove(`/api/events?door_id=${encodeURIComponent(d.door_id)}`);
        }
      });
      box.append(b);
    }
  }

  renderList() {
    const names = new Map(this.deps.doors().map((d) => [d.door_id, d.name]));
    this.list.replaceChildren();
    for (const row of groupHistory(this.events, this.deps.phoneId())) {
      const li = document.createElement("li");
      li.className = "history-row";
      li.dataset.eventId = String(row.id);
      const thumb = document.createElement("img");
      thumb.className = "history-thumb";
      thumb.alt = "";
      if (row.snapshot) {
        thumb.src = row.snapshot;
        thumb.addEventListener("click", () => this.openViewer(/** @type {string} */ (row.snapshot)));
      } else {
        thumb.hidden = true;
      }
      const text = document.createElement("div");
      text.className = "history-text";
      const title = document.createElement("span");
      title.className = "history-title";
      title.textContent = `${names.get(row.doorId) ?? row.doorId} · ${when(row.at)}`;
      const outcome = document.createElement("span");
      outcome.className = "history-outcome";
      outcome.textContent = [row.outcome, ...row.unlocks].join(" · ");
      text.append(title, outcome);
      if (row.voice) {
        const audio = document.createElement("audio");
        audio.className = "history-voice";
        audio.controls = true;
        audio.preload = "metadata";
        audio.src = row.voice;
        text.append(audio);
      }
      const del = document.createElement("button");
      del.type = "button";
      del.className = "history-delete";
      del.setAttribute("aria-label", "Delete");
      del.textContent = "✕";
      del.addEventListener("click", () => this.remove(`/api/events/${row.id}`));
      li.append(thumb, text, del);
      this.list.append(li);
    }
    this.more.hidden = this.nextBefore == null;
  }

  /** @param {string} url */
  openViewer(url) {
    const img = /** @type {HTMLImageElement} */ (this.viewer.querySelector("img"));
    img.src = url;
    this.viewer.hidden = false;
  }

  closeViewer() {
    this.viewer.hidden = true;
  }

  dispose() {
    this.abort.abort();
    this.more.removeEventListener("click", this.onMore);
    this.viewer.removeEventListener("click", this.onCloseViewer);
    this.closeViewer();
  }
}
