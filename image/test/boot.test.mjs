// The amd64 firmware image booted under QEMU with a real systemd as PID 1:
// - doorbelld.service (embedded hub, test sources, simulated GPIO) reaches active under its
//   full sandboxing, with no seccomp / device-policy / W^X denial in the journal;
// - systemd supervises it with a watchdog, and a SIGSTOPped doorbelld is restarted;
// - a phone (Debian's Chromium on the host, through QEMU's port forwarding) pairs with a link
//   from `doorbelld pair` on the serial console and answers a call, media both ways;
// - identity and pairing survive a reboot.
//
//   sudo image/build.sh && node --test image/test/boot.test.mjs
// DOORBELL_IMAGE: the image (default target/image/amd64/doorbell-amd64.img.zst).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launchPhone, openPairingLink, waitForState } from "../../tests/e2e/lib/browser.mjs";
import { waitForStats } from "../../tests/e2e/lib/stats.mjs";
import { createVm } from "./vm.mjs";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const IMAGE = process.env.DOORBELL_IMAGE || join(REPO, "target/image/amd64/doorbell-amd64.img.zst");
/** doorbelld.service's WatchdogSec. */
const WATCHDOG_SEC = 30;
/** The embedded hub's port in the image's /etc/doorbell/doorbell.toml. */
const HUB_PORT = 8443;

let vm;
let phone;
const figures = {};

before(async () => {
  assert.ok(existsSync(IMAGE), `no image at ${IMAGE}: run sudo image/build.sh first`);
  vm = await createVm({ image: IMAGE, forwards: { hub: HUB_PORT } });
  vm.start();
  figures.shellMs = await vm.waitForShell();
});

after(async () => {
  await phone?.close();
  await vm?.stop();
  console.log(`figures (${vm?.kvm ? "KVM" : "TCG"}): ${JSON.stringify(figures)}`);
});

/** Seconds since the guest kernel started at which doorbelld last became active (READY=1). */
async function readyAtSec() {
  const us = await vm.sh("systemctl show -P ActiveEnterTimestampMonotonic doorbelld");
  return Number(us) / 1e6;
}

async function waitActive(what, timeoutMs = 120_000) {
  await vm.waitFor("systemctl is-active -q doorbelld", timeoutMs, what).catch(async (e) => {
    throw new Error(`${e.message}\n${await vm.run("systemctl status --no-pager doorbelld; journalctl -b --no-pager -n 80 -u doorbelld").then((r) => r.out)}`);
  });
}

test("doorbelld reaches active under its full sandboxing, with no denial", async () => {
  await waitActive("doorbelld active after boot");
  figures.readyAfterKernelSec = await readyAtSec();
  const show = await vm.sh(
    "systemctl show doorbelld -p ActiveState -p Result -p NRestarts -p User -p MemoryDenyWriteExecute -p DevicePolicy -p SystemCallFilter -p CapabilityBoundingSet -p ProtectSystem",
  );
  assert.match(show, /^ActiveState=active$/m);
  assert.match(show, /^NRestarts=0$/m, show);
  assert.match(show, /^User=doorbell$/m);
  assert.match(show, /^MemoryDenyWriteExecute=yes$/m);
  assert.match(show, /^DevicePolicy=closed$/m);
  assert.match(show, /^ProtectSystem=strict$/m);
  assert.match(show, /^SystemCallFilter=~?\S+/m, "a system-call filter is installed");
  assert.match(show, /^CapabilityBoundingSet=$/m);

  // Denials: seccomp (SystemCallErrorNumber=EPERM makes them EPERM errors, audit logs type=1326
  // for kills), the device cgroup (EPERM on open), W^X (mprotect/mmap EPERM, Orc's JIT).
  const journal = await vm.sh("journalctl -b --no-pager -o cat -u doorbelld");
  assert.match(journal, /Listening on|hub/i, journal);
  for (const denial of [/Operation not permitted/i, /Permission denied/i, /EPERM|EACCES/, /seccomp|SIGSYS/i, /orc.*(fail|error)/i]) {
    assert.doesNotMatch(journal, denial, `doorbelld's journal shows a denial (${denial})`);
  }
  const kernel = await vm.sh("journalctl -b -k --no-pager -o cat");
  assert.doesNotMatch(kernel, /audit.*type=1326|audit: type=1326/, "seccomp audit record in the kernel log");
  const status = JSON.parse(await vm.sh("doorbelld status"));
  assert.equal(status.state, "idle");
  assert.equal(status.gpio_backend, "simulated");
  assert.equal(status.hub_connected, true);
});

test("systemd watches doorbelld and restarts it when it stops answering", async () => {
  assert.equal(await vm.sh("systemctl show -P WatchdogUSec doorbelld"), `${WATCHDOG_SEC}s`);
  const pid = await vm.sh("systemctl show -P MainPID doorbelld");
  assert.match(pid, /^[1-9]\d*$/);
  const started = Date.now();
  await vm.sh(`kill -STOP ${pid}`);
  await vm.waitFor(
    `p=$(systemctl show -P MainPID doorbelld); [ "$p" != 0 ] && [ "$p" != ${pid} ] && systemctl is-active -q doorbelld`,
    (WATCHDOG_SEC + 60) * 1000,
    "a new doorbelld after the watchdog fired",
  );
  figures.watchdogRestartMs = Date.now() - started;
  const journal = await vm.sh("journalctl -b --no-pager -o cat -u doorbelld");
  assert.match(journal, /Watchdog timeout/i, "systemd logs the watchdog timeout");
  // It was killed by the watchdog (not by anything else) within WatchdogSec plus the restart.
  assert.ok(figures.watchdogRestartMs < (WATCHDOG_SEC + 20) * 1000, `restarted after ${figures.watchdogRestartMs} ms`);
  assert.equal(await vm.sh("systemctl show -P NRestarts doorbelld"), "1");
});

/** A pairing link from `doorbelld pair`, pointed at QEMU's forwarded port on the host. */
async function pairingLink() {
  const out = await vm.sh("doorbelld pair");
  const link = out.match(/https?:\/\/\S+#pair=\S+/);
  assert.ok(link, `no pairing link in: ${out}`);
  const url = new URL(link[0]);
  url.hostname = "127.0.0.1";
  url.port = String(vm.ports.hub);
  return url.toString();
}

async function ringAndAnswer() {
  const { page } = phone;
  await waitForState(page, "idle", 30_000);
  assert.equal(await vm.sh("doorbelld press"), "ok");
  await waitForState(page, "ringing", 15_000);
  const started = Date.now();
  await page.getByRole("button", { name: "Answer", exact: true }).click();
  await waitForState(page, "in-call", 30_000);
  const stats = await waitForStats(
    page,
    (s) => s.video?.framesDecoded > 30 && s.audio?.totalSamplesReceived > 0,
    { timeout: 30_000 },
  );
  figures.answerToMediaMs = Date.now() - started;
  assert.equal(stats.video.mimeType, "video/H264");
  assert.equal(stats.connectionState, "connected");
  // The phone's fake microphone reaches the door.
  await vm.waitFor(
    "doorbelld status | grep -q '\"audio_buffers_received\":[1-9]'",
    20_000,
    "audio from the phone at the door",
  );
  await page.getByRole("button", { name: "Hang up", exact: true }).click();
  await waitForState(page, "idle", 15_000);
  return stats;
}

test("a phone pairs through the forwarded port and answers a call, media both ways", async () => {
  phone = await launchPhone({ name: "phone", ignoreHTTPSErrors: true });
  await openPairingLink(phone.page, await pairingLink());
  await waitForState(phone.page, "idle", 30_000);
  await phone.page.getByText("Front door").first().waitFor({ timeout: 10_000 });
  const stats = await ringAndAnswer();
  figures.callCandidatePair = `${stats.candidatePair?.localType}/${stats.candidatePair?.remoteType}`;
});

test("identity and pairing survive a reboot", async () => {
  const identity = await vm.sh("cat /var/lib/doorbell/identity.json");
  const doorId = JSON.parse(identity).door_id;
  assert.ok(doorId, identity);
  figures.rebootToShellMs = await vm.reboot();
  await waitActive("doorbelld active after the reboot");
  figures.readyAfterKernelSecSecondBoot = await readyAtSec();
  assert.equal(JSON.parse(await vm.sh("cat /var/lib/doorbell/identity.json")).door_id, doorId);
  // The root file system stays read-only; the state is on the data partition.
  assert.match(await vm.sh("findmnt -n -o OPTIONS /"), /(^|,)ro(,|$)/);
  assert.match(await vm.sh("findmnt -n -o SOURCE /var/lib/doorbell"), /\[\/lib-doorbell\]/);
  // The phone was paired before the reboot; it reconnects and a ring reaches it.
  await phone.page.reload();
  await ringAndAnswer();
});
