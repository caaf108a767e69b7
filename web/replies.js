// @ts-check
// Quick replies (docs/PROTOCOL.md "Quick replies"): short clips the household records once
// ("Leave it at the door", "Coming") or on the spot, kept by the hub per door. On the ringing
// and call screens a tap sends one to the door (`quick_reply`), which plays it on its speaker.
// `QuickReplies` owns the panel, its requests and the MediaRecorder; `dispose()` is not needed:
// it lives as long as the page.

/** A recording stops by itself after this long (the hub takes at most 30 s). */
export const MAX_RECORD_MS = 10_000;

/** @typedef {{reply_id: number, label: string, duration_ms: number, content_type: string}} Reply */

/** The MediaRecorder type to ask for: Opus in WebM (Chromium) or Ogg (Firefox). */
export function recorderType(isSupported = (/** @type {string} */ t) => MediaRecorder.isTypeSupported(t)) {
  return ["audio/webm;codecs=opus", "audio/ogg;codecs=opus"].find((t) => isSupported(t)) ?? "";
}

/** "Reply 14:02": the label of a clip recorded on the spot. @param {Date} now */
export function spotLabel(now) {
  return `Reply ${now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })}`;
}

export class QuickReplies {
  /** @type {() => string | null} */ #token;
  /** @type {(text: string) => boolean} */ #send;
  /** @type {Map<string, Reply[]>} door id -> its replies */ #byDoor = new Map();
  /** @type {{callId: string, doorId: string} | null} */ #call = null;
  /** @type {MediaRecorder | null} */ #recorder = null;
  #panel = /** @type {HTMLElement} */ (document.getElementById("quick-replies"));

  /** @param {{token: () => string | null, send: (text: string) => boolean, quickReply: (callId: string, id: number) => string}} deps */
  constructor(deps) {
    this.#token = deps.token;
    this.#send = (text) => deps.send(text);
    this.quickReply = deps.quickReply;
    document.getElementById("btn-prepare-reply")?.addEventListener("click", () => this.#recordPrepared());
  }

  /** @param {string} path @param {RequestInit} [init] */
  async #api(path, init = {}) {
    const res = await fetch(path, { ...init, headers: { Authorization: `Bearer ${this.#token()}`, ...(init.headers ?? {}) } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
    return body;
  }

  /** @param {string} doorId */
  async load(doorId) {
    const body = await this.#api(`/api/replies?door_id=${encodeURIComponent(doorId)}`);
    this.#byDoor.set(doorId, body.replies ?? []);
    this.#draw();
  }

  /**
   * Shows the panel in `screen` for this call, or hides it (`call` null).
   * @param {{callId: string, doorId: string} | null} call @param {HTMLElement | null} screen
   */
  show(call, screen) {
    const changed = call?.callId !== this.#call?.callId;
    this.#call = call;
    if (!call || !screen) {
      this.#panel.hidden = true;
      return;
    }
    if (this.#panel.parentElement !== screen) screen.insertBefore(this.#panel, screen.querySelector(".actions"));
    this.#panel.hidden = false;
    if (changed) this.load(call.doorId).catch((e) => this.#status(`Quick replies: ${e.message}`));
  }

  /** @param {string} text */
  #status(text) {
    const el = this.#panel.querySelector(".quick-status");
    if (el) el.textContent = text;
  }

  #draw() {
    const list = this.#panel.querySelector(".quick-list");
    if (!list || !this.#call) return;
    list.replaceChildren();
    for (const reply of this.#byDoor.get(this.#call.doorId) ?? []) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "btn secondary small quick-reply";
      b.textContent = reply.label;
      b.addEventListener("click", () => this.#sendReply(reply.reply_id, reply.label));
      list.append(b);
    }
    const rec = document.createElement("button");
    rec.type = "button";
    rec.className = "btn secondary small quick-record";
    rec.textContent = this.#recorder ? "Stop and send" : "Record a reply";
    rec.addEventListener("click", () => this.#recordOnTheSpot());
    list.append(rec);
  }

  /** @param {number} id @param {string} label */
  #sendReply(id, label) {
    if (!this.#call) return;
    const sent = this.#send(this.quickReply(this.#call.callId, id));
    this.#status(sent ? `Sent "${label}"` : "Not sent: the hub is unreachable");
  }

  /** Records until stopped (or MAX_RECORD_MS); the clip as a Blob. */
  async #record() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const recorder = new MediaRecorder(stream, { mimeType: recorderType() });
    /** @type {Blob[]} */
    const parts = [];
    recorder.ondataavailable = (ev) => ev.data.size && parts.push(ev.data);
    const done = new Promise((resolve) => (recorder.onstop = resolve));
    this.#recorder = recorder;
    recorder.start();
    const timer = setTimeout(() => recorder.state === "recording" && recorder.stop(), MAX_RECORD_MS);
    this.#draw();
    await done;
    clearTimeout(timer);
    stream.getTracks().forEach((t) => t.stop());
    this.#recorder = null;
    return new Blob(parts, { type: recorder.mimeType });
  }

  /** @param {string} doorId @param {string} label @param {Blob} clip @returns {Promise<number>} */
  async #upload(doorId, label, clip) {
    const query = `door_id=${encodeURIComponent(doorId)}&label=${encodeURIComponent(label)}`;
    const body = await this.#api(`/api/replies?${query}`, { method: "POST", body: clip, headers: { "Content-Type": clip.type } });
    return body.reply_id;
  }

  async #recordOnTheSpot() {
    if (this.#recorder) return this.#recorder.stop();
    const call = this.#call;
    if (!call) return;
    try {
      this.#status("Recording…");
      const clip = await this.#record();
      const label = spotLabel(new Date());
      const id = await this.#upload(call.doorId, label, clip);
      this.#sendReply(id, label);
      await this.load(call.doorId);
    } catch (e) {
      this.#recorder = null;
      this.#status(`Not sent: ${/** @type {Error} */ (e).message}`);
      this.#draw();
    }
  }

  /** The idle screen's "Record" for a prepared reply, kept for every paired door. */
  async #recordPrepared() {
    const input = /** @type {HTMLInputElement} */ (document.getElementById("prepare-label"));
    const status = document.getElementById("prepare-status");
    const button = /** @type {HTMLButtonElement} */ (document.getElementById("btn-prepare-reply"));
    if (this.#recorder) return this.#recorder.stop();
    const label = input.value.trim();
    if (!label) {
      if (status) status.textContent = "Give the reply a name first, e.g. Coming.";
      return;
    }
    try {
      button.textContent = "Stop";
      if (status) status.textContent = "Recording…";
      const clip = await this.#record();
      for (const doorId of this.doors()) await this.#upload(doorId, label, clip);
      if (status) status.textContent = `Saved "${label}".`;
      input.value = "";
    } catch (e) {
      this.#recorder = null;
      if (status) status.textContent = `Not saved: ${/** @type {Error} */ (e).message}`;
    } finally {
      button.textContent = "Record";
    }
  }

  /** The doors prepared replies are kept for; set by the app. @returns {string[]} */
  doors() {
    return [];
  }
}
