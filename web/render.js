// @ts-check
// Draws the model (state.js) into index.html. The only module that writes the page; it reads
// nothing back from it. Lists are rebuilt only when their part of the model changed.

import { PushState, Screen, canUnlock, mayUnlock, pairQuestion } from "./state.js";

/** @typedef {import("./state.js").Model} Model */

/** @param {string} id @returns {HTMLElement} */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {HTMLElement} el @param {string} text */
function showError(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

/**
 * @param {Model} m the model to show
 * @param {Model | null} prev the model last shown (null: first render)
 * @param {number} now performance.now(), for the call timer
 */
export function render(m, prev, now) {
  document.body.dataset.state = m.screen;
  document.title = m.screen === Screen.Ringing && m.call ? `🔔 ${m.call.doorName} is ringing` : "Doorbell";
  $("hub-title").textContent = m.hubTitle;
  $("hub-detail").textContent = m.hubDetail;
  showError($("hub-error"), m.hubError);
  showError($("pair-error"), m.pairError);
  // Only while asked: the door's name must not linger in a hidden screen.
  $("confirm-pair-title").textContent = m.pairOffer ? pairQuestion(m.pairOffer) : "";
  showError($("idle-error"), m.idleError);
  showError($("household-note"), m.householdNote);
  if (!prev || prev.doors !== m.doors) renderDoors(m.doors);
  if (!prev || prev.missed !== m.missed) renderMissedRings(m.missed);
  if (m.notice) {
    $("notice-title").textContent = m.notice.title;
    $("notice-detail").textContent = m.notice.detail;
    $("notice-icon").dataset.kind = m.notice.kind;
  }
  renderPush(m.push);
  renderCall(m, now);
  $("view-door").textContent = m.view?.doorName ?? "";
  $("view-status").hidden = !m.view || m.view.live;
}

/** @param {import("./state.js").PushView} push */
function renderPush(push) {
  $("push-panel").dataset.push = push.state;
  if (push.text) $("push-text").textContent = push.text;
  const on = /** @type {HTMLButtonElement} */ ($("btn-push-on"));
  const off = /** @type {HTMLButtonElement} */ ($("btn-push-off"));
  on.hidden = push.state !== PushState.Off && push.state !== PushState.Denied;
  off.hidden = push.state !== PushState.On;
  on.disabled = off.disabled = push.state === PushState.Busy;
}

/** @param {Model} m @param {number} now */
function renderCall(m, now) {
  const c = m.call;
  const unlock = $("btn-unlock");
  const unlockStatus = $("unlock-status");
  /** @type {HTMLButtonElement} */ (unlock).disabled = !canUnlock(m);
  // A phone that may not unlock this door sees no Unlock button at all.
  unlock.hidden = !!c && !mayUnlock(m);
  const mute = /** @type {HTMLButtonElement} */ ($("btn-mute"));
  mute.setAttribute("aria-pressed", String(m.muted));
  mute.classList.toggle("active", m.muted);
  $("btn-mute-label").textContent = m.muted ? "Unmute" : "Mute";
  const live = !!c && !c.answered && c.preview === "live";
  $("screen-ringing").dataset.preview = live ? "live" : "off";
  if (!c) {
    unlockStatus.hidden = true;
    renderSnapshot(null);
    return;
  }
  $("ring-door").textContent = c.doorName;
  // The live video once it shows; the visitor's snapshot until then; the bell without either.
  renderSnapshot(live ? null : c.snapshot);
  $("ring-bell").hidden = live || !!c.snapshot;
  if (!c.answered) return;
  $("call-door").textContent = c.doorName;
  $("call-status-text").textContent = c.statusText;
  $("call-mic-note").hidden = !c.micFailed;
  mute.disabled = !c.micReady || c.micFailed;
  renderTimer(c.startedAt, now);
  if (c.unlock) {
    unlockStatus.textContent = c.unlock.text;
    unlockStatus.dataset.kind = c.unlock.kind;
  }
  unlockStatus.hidden = !c.unlock;
}

/** The visitor's snapshot on the ringing screen. @param {string | null} url */
function renderSnapshot(url) {
  const img = /** @type {HTMLImageElement} */ ($("ring-snapshot"));
  if ((img.getAttribute("src") ?? null) !== url) {
    if (url) img.src = url;
    else img.removeAttribute("src");
  }
  img.hidden = !url;
}

/** @param {number | null} startedAt @param {number} now */
export function renderTimer(startedAt, now) {
  const s = startedAt == null ? 0 : Math.floor((now - startedAt) / 1000);
  const mm = String(Math.floor(s / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  $("call-timer").textContent = `${mm}:${ss}`;
}

/** @param {import("./state.js").Door[]} doors */
function renderDoors(doors) {
  const list = $("door-list");
  list.replaceChildren();
  if (doors.length === 0) {
    const li = document.createElement("li");
    li.className = "door empty";
    li.textContent = "No doors paired yet. Open a pairing link to add one.";
    list.append(li);
    return;
  }
  const sorted = [...doors].sort((a, b) => a.name.localeCompare(b.name));
  for (const d of sorted) {
    const li = document.createElement("li");
    li.className = "door";
    li.dataset.doorId = d.door_id;
    li.dataset.online = String(d.online);
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "door-label";
    name.textContent = d.name;
    const status = document.createElement("span");
    status.className = "door-status";
    status.textContent = d.online ? "Online" : "Offline";
    li.append(dot, name, status);
    // Live view: online doors this phone may view (`may_view`; absent access: yes).
    if (d.online && d.access?.may_view !== false) {
      const view = document.createElement("button");
      view.type = "button";
      view.className = "btn secondary small";
      view.dataset.view = d.door_id;
      view.textContent = "View";
      li.append(view);
    }
    if (d.access?.role === "owner") {
      const manage = document.createElement("button");
      manage.type = "button";
      manage.className = "btn secondary small";
      manage.dataset.household = d.door_id;
      manage.textContent = "Household";
      li.append(manage);
    } else if (d.access) {
      // Members and guests can leave a door themselves (owners do it on the household screen).
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "btn secondary small";
      leave.dataset.leave = d.door_id;
      leave.textContent = "Leave";
      li.append(leave);
    }
    list.append(li);
  }
}

/** "14:02" today, "14:02, 3 Dec" before. @param {number} atMs */
function formatRingTime(atMs) {
  const at = new Date(atMs);
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  if (at.toDateString() === new Date().toDateString()) return time;
  return `${time}, ${at.toLocaleDateString([], { day: "numeric", month: "short" })}`;
}

/** @param {import("./state.js").MissedRing[]} missed */
function renderMissedRings(missed) {
  const list = $("missed-list");
  list.replaceChildren();
  $("missed-title").hidden = list.hidden = missed.length === 0;
  for (const r of missed) {
    const li = document.createElement("li");
    li.className = "missed";
    li.dataset.atMs = String(r.at_ms);
    li.dataset.doorId = r.door_id;
    const text = document.createElement("span");
    text.className = "missed-text";
    text.textContent = `Missed ring at ${formatRingTime(r.at_ms)}`;
    const door = document.createElement("span");
    door.className = "missed-door";
    door.textContent = r.door_name;
    li.append(text, door);
    list.append(li);
  }
}
