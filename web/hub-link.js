// @ts-check
// The WebSocket to the hub (/ws, docs/PROTOCOL.md): hello with the phone token, decoded
// messages out, and reconnects with jittered exponential backoff. Knows nothing of screens.

import * as proto from "./protocol.js";

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 10000;
/** Close code of a connection whose phone was removed from a door (docs/PROTOCOL.md "Close codes"). */
export const CLOSE_REVOKED = 4001;

/** "Equal jitter": half the capped exponential delay, plus a random half. @param {number} attempt @param {number} [random] */
export function backoffDelay(attempt, random = Math.random()) {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
  return Math.round(cap / 2 + random * (cap / 2));
}

/**
 * @typedef {{
 *   token: () => string | null,
 *   onConnecting: (firstAttempt: boolean) => void,
 *   onOpen: () => void,
 *   onMessage: (msg: any) => void,
 *   onLost: (delayMs: number) => void,
 *   onUnauthorized: () => void,
 *   onNoToken: () => void,
 * }} HubLinkEvents
 */

export class HubLink {
  /** @type {WebSocket | null} */
  #ws = null;
  #ready = false; // welcome received on #ws
  #attempts = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  #on;

  /** @param {HubLinkEvents} events */
  constructor(events) {
    this.#on = events;
  }

  /** Welcome received on the current socket. */
  get ready() {
    return this.#ready;
  }

  #url() {
    return (location.protocol === "https:" ? "wss" : "ws") + "://" + location.host + "/ws";
  }

  /** (Re)connects now. fresh: forget the backoff (a new pairing, the network came back). */
  connect(fresh = false) {
    this.stop();
    const token = this.#on.token();
    if (!token) {
      this.#on.onNoToken();
      return;
    }
    if (fresh) this.#attempts = 0;
    this.#on.onConnecting(this.#attempts === 0);

    let socket;
    try {
      socket = new WebSocket(this.#url());
    } catch (e) {
      console.warn("doorbell: cannot open WebSocket", e);
      this.#scheduleReconnect();
      return;
    }
    this.#ws = socket;
    let unauthorized = false;

    socket.onopen = () => {
      this.#on.onOpen();
      socket.send(proto.hello(this.#on.token() ?? token));
    };
    socket.onmessage = (ev) => {
      if (socket !== this.#ws) return;
      let msg;
      try {
        msg = proto.decodeHubToPhone(ev.data);
      } catch (e) {
        console.warn("doorbell: ignoring bad message from hub:", /** @type {any} */ (e).message);
        return;
      }
      if (msg.type === "error" && msg.code === "unauthorized") unauthorized = true;
      if (msg.type === "welcome") {
        if (msg.protocol_version !== proto.PROTOCOL_VERSION) {
          console.warn("doorbell: hub speaks protocol", msg.protocol_version);
        }
        this.#ready = true;
        this.#attempts = 0;
      }
      this.#on.onMessage(msg);
    };
    socket.onerror = () => {}; // onclose follows and does the work
    socket.onclose = (ev) => {
      if (socket !== this.#ws) return;
      this.#ws = null;
      this.#ready = false;
      if (unauthorized) {
        this.#on.onUnauthorized();
        return;
      }
      if (ev.code === CLOSE_REVOKED) {
        // Removed from a door: ask again at once whether this phone still has any (a welcome
        // without that door) or none (unauthorized: pair again).
        console.info("doorbell: hub closed the connection:", ev.code, ev.reason);
        this.connect(true);
        return;
      }
      if (ev.code && ev.code !== 1006 && ev.reason) console.info("doorbell: hub closed the connection:", ev.code, ev.reason);
      this.#on.onLost(this.#scheduleReconnect());
    };
  }

  /** Closes the socket and cancels any reconnect. */
  stop() {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const old = this.#ws;
    this.#ws = null;
    this.#ready = false;
    if (old) {
      old.onopen = old.onmessage = old.onclose = old.onerror = null;
      try {
        old.close(1000);
      } catch {}
    }
  }

  /** @param {string} text @returns {boolean} whether it went out */
  send(text) {
    if (this.#ws && this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.send(text);
      return true;
    }
    console.warn("doorbell: not connected; dropped", text.slice(0, 80));
    return false;
  }

  #scheduleReconnect() {
    clearTimeout(this.#timer);
    const delay = backoffDelay(this.#attempts);
    this.#attempts += 1;
    this.#timer = setTimeout(() => this.connect(false), delay);
    return delay;
  }
}
