// @ts-check
// The household screen of a door this phone owns: its phones with role and permissions
// (rename, allow or forbid unlock and live view, remove), and invites (role, permissions, a
// guest's end) shown as a link to copy or share and as a QR code. Talks to the hub's
// household API (docs/PROTOCOL.md "Household"); exists while the screen shows (app.js),
// and `dispose()` removes every listener it added.

import { $ } from "./render.js";
import { qrSvg } from "./qr.js";
import { grantAuth, inviteAuth, inviteSecret, newCodeId, readDoorKey } from "./pairing-proof.js";
import { readPins } from "./pin.js";

/**
 * @typedef {{phone_id: string, name: string, role: string, may_unlock: boolean, may_view: boolean,
 *   until_ms?: number, paired_at: number, last_seen?: number}} Member
 */

/** Longest phone name the hub keeps. */
const NAME_MAX = 64;

export class HouseholdView {
  #token;
  #doorId;
  #doorName;
  #myPhoneId;
  /** @type {AbortController} removes every listener at dispose */
  #listeners = new AbortController();
  #disposed = false;

  /**
   * @param {{token: () => string | null, doorId: string, doorName: string, phoneId: () => string}} opts
   */
  constructor({ token, doorId, doorName, phoneId }) {
    this.#token = token;
    this.#doorId = doorId;
    this.#doorName = doorName;
    this.#myPhoneId = phoneId;
    $("household-title").textContent = `${doorName}: household`;
    $("invite-result").hidden = true;
    const signal = this.#listeners.signal;
    $("invite-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.#invite();
    }, { signal });
    $("invite-role").addEventListener("change", () => this.#roleChanged(), { signal });
    $("btn-invite-copy").addEventListener("click", () => this.#copy(), { signal });
    $("btn-invite-share").addEventListener("click", () => this.#share(), { signal });
    this.#roleChanged();
    this.refresh();
  }

  dispose() {
    this.#disposed = true;
    this.#listeners.abort();
    $("household-list").replaceChildren();
  }

  /**
   * One call to the household API; the parsed JSON (null for 204), or throws an Error for
   * the user.
   * @param {string} method @param {string} path @param {any} [body]
   */
  async #api(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${this.#token() ?? ""}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`/api/doors/${encodeURIComponent(this.#doorId)}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (res.status === 204) return null;
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error(data?.error ?? `The hub said HTTP ${res.status}.`);
    return data;
  }

  /** @param {string} text */
  #status(text) {
    $("household-status").textContent = text;
  }

  async refresh() {
    try {
      const data = await this.#api("GET", "/phones");
      if (!this.#disposed) this.#render(/** @type {Member[]} */ (data.phones ?? []));
    } catch (e) {
      this.#status(/** @type {Error} */ (e).message);
    }
  }

  /** @param {Member[]} phones */
  #render(phones) {
    this.#status(phones.length === 1 ? "Only this phone so far." : `${phones.length} phones.`);
    const list = $("household-list");
    list.replaceChildren(...phones.map((p) => this.#row(p)));
  }

  /** @param {Member} p */
  #row(p) {
    const li = document.createElement("li");
    li.className = "door household-row";
    li.dataset.phoneId = p.phone_id;
    const name = document.createElement("input");
    name.value = p.name;
    name.maxLength = NAME_MAX;
    name.setAttribute("aria-label", "Phone name");
    name.addEventListener("change", () => this.#patch(p.phone_id, { name: name.value }));
    const role = document.createElement("span");
    role.className = "door-status";
    const until = p.until_ms ? ` until ${new Date(p.until_ms).toLocaleString()}` : "";
    const me = p.phone_id === this.#myPhoneId() ? " (this phone)" : "";
    role.textContent = `${p.role}${until}${me}`;
    li.append(name, role, this.#toggle(p, "may_unlock", "May unlock"), this.#toggle(p, "may_view", "Live view"));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn secondary small";
    remove.textContent = me ? "Leave" : "Remove";
    remove.addEventListener("click", () => this.#remove(p));
    li.append(remove);
    return li;
  }

  /** @param {Member} p @param {"may_unlock" | "may_view"} field @param {string} text */
  #toggle(p, field, text) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = p[field];
    box.addEventListener("change", () => this.#patch(p.phone_id, { [field]: box.checked }));
    label.append(box, ` ${text}`);
    return label;
  }

  /** @param {string} phoneId @param {Record<string, any>} patch */
  async #patch(phoneId, patch) {
    try {
      const access = await this.#api("PATCH", `/phones/${encodeURIComponent(phoneId)}`, patch);
      // A raise takes effect at the door only with this owner's authorisation (the hub
      // cannot grant); a reduction needs none.
      const raises = patch.may_unlock === true || patch.may_view === true || patch.role !== undefined;
      const key = readDoorKey(this.#doorId);
      if (raises && key && access) {
        const auth = await grantAuth(key, this.#doorId, phoneId, access);
        await this.#api("POST", `/phones/${encodeURIComponent(phoneId)}/grant`, { ...access, auth });
      }
    } catch (e) {
      this.#status(/** @type {Error} */ (e).message);
    }
    this.refresh();
  }

  /** @param {Member} p */
  async #remove(p) {
    if (!confirm(`Remove “${p.name}” from this door? It stops ringing and cannot open the door.`)) return;
    try {
      await this.#api("DELETE", `/phones/${encodeURIComponent(p.phone_id)}`);
      this.#status(`Removed ${p.name}.`);
    } catch (e) {
      this.#status(/** @type {Error} */ (e).message);
    }
    this.refresh();
  }

  #roleChanged() {
    const guest = /** @type {HTMLSelectElement} */ ($("invite-role")).value === "guest";
    $("invite-until-label").hidden = !guest;
  }

  async #invite() {
    const role = /** @type {HTMLSelectElement} */ ($("invite-role")).value;
    /** @type {Record<string, any>} */
    const body = {
      role,
      may_unlock: /** @type {HTMLInputElement} */ ($("invite-unlock")).checked,
      may_view: /** @type {HTMLInputElement} */ ($("invite-view")).checked,
    };
    if (role === "guest") {
      const until = Date.parse(/** @type {HTMLInputElement} */ ($("invite-until")).value);
      if (!Number.isFinite(until)) {
        this.#status("A guest needs an end: pick a date and time.");
        return;
      }
      body.until_ms = until;
    }
    try {
      const { link, expiresAt } = await this.#makeInvite(body);
      /** @type {HTMLInputElement} */ ($("invite-link")).value = link;
      const qr = /** @type {HTMLImageElement} */ ($("invite-qr"));
      qr.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qrSvg(link))}`;
      $("invite-expiry").textContent = `Works once, until ${new Date(expiresAt).toLocaleTimeString()}.`;
      $("invite-result").hidden = false;
      /** @type {HTMLButtonElement} */ ($("btn-invite-share")).hidden = !navigator.share;
    } catch (e) {
      this.#status(/** @type {Error} */ (e).message);
    }
  }

  /**
   * An invite and its link. With the key this phone shares with the door, the phone makes the
   * code itself and the door checks the owner's authorisation (the hub cannot mint one); the
   * link carries the code's secret and the door's pinned fingerprint, like the door's own.
   * Without a key (paired before doors pinned phones) the hub makes the code: the door will
   * not take that phone's calls until it pairs with a link from the door.
   * @param {Record<string, any>} body
   */
  async #makeInvite(body) {
    // This page's own origin: the one the invited phone can reach too. The door's name is
    // for the invited phone's "Pair this phone with Front door?".
    const name = `&door=${encodeURIComponent(this.#doorName)}`;
    const key = readDoorKey(this.#doorId);
    if (!key) {
      const invite = await this.#api("POST", "/invites", body);
      return { link: `${location.origin}/#pair=${encodeURIComponent(invite.code)}${name}`, expiresAt: invite.expires_at };
    }
    const codeId = newCodeId();
    const auth = await inviteAuth(key, this.#doorId, codeId, /** @type {any} */ (body));
    const invite = await this.#api("POST", "/invites", { ...body, code_id: codeId, auth });
    const secret = await inviteSecret(key, codeId);
    const pin = readPins()[this.#doorId];
    const fp = pin ? `&fp=${pin}` : "";
    return {
      link: `${location.origin}/#pair=${encodeURIComponent(this.#doorId)}.${codeId}.${secret}${name}${fp}`,
      expiresAt: invite.expires_at,
    };
  }

  async #copy() {
    const link = /** @type {HTMLInputElement} */ ($("invite-link")).value;
    try {
      await navigator.clipboard.writeText(link);
      this.#status("Link copied.");
    } catch {
      /** @type {HTMLInputElement} */ ($("invite-link")).select();
      this.#status("Copy the selected link.");
    }
  }

  async #share() {
    const url = /** @type {HTMLInputElement} */ ($("invite-link")).value;
    try {
      await navigator.share({ title: "Doorbell invite", url });
    } catch {
      // The person closed the share sheet.
    }
  }
}
