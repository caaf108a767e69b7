// A/B updates of the amd64 image with RAUC's GRUB backend, booted under QEMU:
// - a bundle signed with the test CA (made by image/build.sh, never committed) from a newer root
//   file system is installed from the running image, the door reboots into the other slot, and
//   doorbell-health.service marks it good;
// - a second bundle whose doorbelld cannot start fails the health check: the door goes back to
//   the previous slot by itself;
// - the data partition (identity, pairings) is untouched throughout;
// - a release bundle refuses the development key.
//
//   sudo image/build.sh && node --test image/test/update.test.mjs

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, statfsSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { createVm } from "./vm.mjs";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const IMAGE_DIR = process.env.DOORBELL_IMAGE_DIR || join(REPO, "target/image/amd64");
const IMAGE = process.env.DOORBELL_IMAGE || join(IMAGE_DIR, "doorbell-amd64.img.zst");
const ROOTFS = join(IMAGE_DIR, "rootfs.ext4");
/** The broken update's health-check timeout (the image's default, 120 s, is for real doors). */
const BAD_HEALTH_TIMEOUT_SEC = 20;

let vm;
let work;
const figures = {};

/** A copy of the image's rootfs with files replaced (debugfs writes without mounting). */
function rootfsWith(name, files) {
  const fs = join(work, `${name}.ext4`);
  execFileSync("cp", ["--sparse=always", ROOTFS, fs]);
  const commands = [];
  for (const [path, content] of Object.entries(files)) {
    const local = join(work, `${name}-${commands.length}`);
    writeFileSync(local, content);
    let dir = dirname(path);
    const parents = [];
    while (dir !== "/") {
      parents.unshift(dir);
      dir = dirname(dir);
    }
    for (const p of parents) commands.push(`mkdir ${p}`);
    commands.push(`rm ${path}`, `write ${local} ${path}`, `sif ${path} mode 0100644`);
  }
  writeFileSync(join(work, `${name}.debugfs`), commands.join("\n") + "\n");
  // debugfs reports "already exists" / "not found" for mkdir and rm of existing/new paths; the
  // file check below is what matters.
  execFileSync("debugfs", ["-w", "-f", join(work, `${name}.debugfs`), fs], { stdio: "ignore" });
  for (const path of Object.keys(files)) {
    const got = execFileSync("debugfs", ["-R", `cat ${path}`, fs], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.equal(got, files[path], `debugfs wrote ${path}`);
  }
  return fs;
}

before(async () => {
  assert.ok(existsSync(IMAGE) && existsSync(ROOTFS), `no image in ${IMAGE_DIR}: run sudo image/build.sh first`);
  work = mkdtempSync(join(tmpdir(), "doorbell-update-"));
  const good = rootfsWith("good", { "/etc/doorbell-image-version": "update-good\n" });
  // The modified rootfs copies live in a temporary directory: sign with the image's keys.
  const keys = join(IMAGE_DIR, "keys");
  const sign = (name, fs, version) => {
    const out = join(work, `${name}.raucb`);
    try {
      execFileSync("bash", [join(REPO, "image/bundle.sh"), "--rootfs", fs, "--out", out, "--version", version,
      "--key", join(keys, "development-1.key.pem"), "--cert", join(keys, "development-1.cert.pem")], { stdio: "pipe" });
    } catch (e) {
      throw new Error(`bundle.sh failed (${statfsSync(work).bavail * statfsSync(work).bsize} bytes free): ${e.stderr}`);
    }
    return out;
  };
  const t0 = Date.now();
  sign("good", good, "update-good");
  figures.bundleBuildMs = Date.now() - t0;
  rmSync(good);
  const bad = rootfsWith("bad", {
    "/etc/doorbell-image-version": "update-bad\n",
    // doorbelld cannot start: the health check never sees it active.
    "/etc/systemd/system/doorbelld.service.d/broken.conf": "[Service]\nExecStart=\nExecStart=/bin/false\n",
    "/etc/systemd/system/doorbell-health.service.d/timeout.conf": `[Service]\nEnvironment=HEALTH_TIMEOUT=${BAD_HEALTH_TIMEOUT_SEC}\n`,
  });
  sign("bad", bad, "update-bad");
  rmSync(bad);
  // The bundles reach the door as raw read-only disks (/dev/vdb, /dev/vdc: a USB stick, say);
  // the test copies each into the door's RAM first (RAUC 1.8 installs from a file, no streaming).
  // Padded to whole sectors for QEMU; the guest reads exactly the bundle's bytes.
  for (const name of ["good", "bad"]) {
    const file = join(work, `${name}.raucb`);
    figures[`${name}BundleBytes`] = statSync(file).size;
    truncateSync(file, Math.ceil(statSync(file).size / 512) * 512);
  }
  vm = await createVm({ image: IMAGE, memoryMb: 2048 });
  vm.extraDrives = [join(work, "good.raucb"), join(work, "bad.raucb")];
  vm.start();
  await vm.waitForShell();
});

after(async () => {
  await vm?.stop();
  if (work && !process.env.DOORBELL_KEEP_VM) rmSync(work, { recursive: true, force: true });
  console.log(`figures (${vm?.kvm ? "KVM" : "TCG"}): ${JSON.stringify(figures)}`);
});

/** RAUC's view: { booted, slots: { A: status, B: status } }. */
async function raucStatus() {
  const out = await vm.sh("rauc status --output-format=shell");
  const get = (key) => out.match(new RegExp(`^${key}='?([^'\\n]*)'?$`, "m"))?.[1];
  const slots = {};
  for (const i of [0, 1, 2, 3]) {
    const name = get(`RAUC_SLOT_BOOTNAME_${i}`);
    if (name) slots[name] = get(`RAUC_SLOT_BOOT_STATUS_${i}`);
  }
  return { booted: get("RAUC_SYSTEM_BOOTED_BOOTNAME"), slots, raw: out };
}

async function waitHealthy(what) {
  await vm.waitFor("systemctl is-active -q doorbell-health && journalctl -b -u doorbell-health -o cat | grep -q 'marking the booted slot good'", 180_000, what);
}

async function dataFingerprint() {
  return vm.sh("sha256sum /var/lib/doorbell/identity.json /etc/doorbell/doorbell.toml | cut -d' ' -f1");
}

test("a signed update installs into the other slot, boots, and is marked good", async () => {
  await waitHealthy("the factory slot marked good");
  let status = await raucStatus();
  assert.equal(status.booted, "A", status.raw);
  const data = await dataFingerprint();

  let t0 = Date.now();
  await vm.sh(`head -c ${figures.goodBundleBytes} /dev/vdb > /tmp/update.raucb`, 300_000);
  await vm.sh("rauc install /tmp/update.raucb && rm /tmp/update.raucb", 600_000);
  figures.installMs = Date.now() - t0;
  status = await raucStatus();
  assert.equal(status.slots.B, "good", `RAUC marks the new slot for the next boot: ${status.raw}`);

  t0 = Date.now();
  await vm.reboot();
  await waitHealthy("the updated slot marked good");
  figures.rebootToHealthyMs = Date.now() - t0;
  status = await raucStatus();
  assert.equal(status.booted, "B", status.raw);
  assert.equal(await vm.sh("cat /etc/doorbell-image-version"), "update-good");
  assert.equal(await dataFingerprint(), data, "identity and configuration untouched");
  const env = await vm.sh("grub-editenv /boot/firmware/EFI/BOOT/grubenv list");
  assert.match(env, /^B_OK=1$/m, env);
  assert.match(env, /^B_TRY=0$/m, env);
});

test("an update whose doorbelld fails the health check rolls back by itself", async () => {
  const data = await dataFingerprint();
  await vm.sh(`head -c ${figures.badBundleBytes} /dev/vdc > /tmp/update.raucb`, 300_000);
  await vm.sh("rauc install /tmp/update.raucb && rm /tmp/update.raucb", 600_000);
  const consoleBefore = vm.console().length;
  const t0 = Date.now();
  vm.shell.write("systemctl reboot\n");
  // First boot of the bad slot A, its health check gives up, then the second reboot. Under TCG
  // on a loaded 2-core machine a shutdown alone took over 60 s (2026-12-04): TCG gets the same
  // allowances as vm.reboot().
  const shutdownMs = vm.kvm ? 60_000 : 400_000;
  const bootMs = vm.kvm ? 180_000 : 600_000;
  await vm.waitForConsole(/reboot: Restarting system/, shutdownMs, "the reboot into the bad update", consoleBefore);
  const second = vm.console().length;
  await vm.waitForConsole(/reboot: Restarting system/, bootMs, "the health check's reboot (rollback)", second);
  vm.buffer = "";
  await vm.waitForShell(bootMs);
  figures.rollbackMs = Date.now() - t0;
  const status = await raucStatus();
  assert.equal(status.booted, "B", `back on the previous slot: ${status.raw}`);
  assert.equal(status.slots.A, "bad", status.raw);
  assert.equal(await vm.sh("cat /etc/doorbell-image-version"), "update-good");
  await vm.waitFor("systemctl is-active -q doorbelld", 120_000, "doorbelld active after the rollback");
  assert.equal(await dataFingerprint(), data, "identity and configuration untouched");
});

test("a release bundle refuses the development signing key", () => {
  const keys = join(IMAGE_DIR, "keys");
  assert.throws(
    () =>
      execFileSync("bash", [join(REPO, "image/bundle.sh"), "--rootfs", ROOTFS, "--out", join(work, "release.raucb"), "--release",
        "--key", join(keys, "development-1.key.pem"), "--cert", join(keys, "development-1.cert.pem")], { stdio: "pipe" }),
    (e) => /refusing development signing material/.test(e.stderr.toString()),
  );
  assert.ok(!existsSync(join(work, "release.raucb")));
});
