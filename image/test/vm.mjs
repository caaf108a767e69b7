// Boots the doorbell disk image under QEMU (KVM when /dev/kvm is usable, TCG otherwise) and
// drives it through a root shell on its second serial port.
//
// The shell exists only because the test sets `doorbell.debug_shell` in the image's grubenv
// (doorbell_cmdline) before the first boot: a flashed card has no login at all. The first serial
// port carries the kernel and systemd console, kept in console.log for failure messages.

import { spawn, execFileSync } from "node:child_process";
import { accessSync, constants, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The image's boot partition starts at 1 MiB (image/build.sh): mtools' offset syntax. */
const BOOT_PARTITION = "@@1M";
/** Guest memory: GStreamer, the hub and a call fit in 1 GiB with room for the page cache. */
const GUEST_MEMORY_MB = 1024;
/** How long one shell command may take unless the caller says otherwise. */
const COMMAND_TIMEOUT_MS = 60_000;

/**
 * Where the host's /dev/kvm is PVM (the kvm_pvm module: KVM for machines that are themselves VMs
 * without nested virtualisation in the CPU), it runs only guest kernels built for PVM. Checked
 * 2026-12-04 on the CI machines (Firecracker VMs, AMD EPYC, no svm flag): a stock Debian kernel
 * has its privileged code emulated instruction by instruction (25 s to reach the kernel's memory
 * set-up, which TCG passes in 0.07 s) and then stops at a `lock cmpxchg16b` with "KVM internal
 * error ... emulation failure"; firmware fares no better (SeaBIOS, qboot and OVMF all stall or
 * fail the same way), under -M pc, q35 and microvm, with PVH direct boot too.
 */
const PVM_MODULE = "/sys/module/kvm_pvm";

/**
 * KVM if DOORBELL_QEMU_ACCEL=kvm, or if /dev/kvm is usable and is not PVM (above); TCG otherwise
 * (and with DOORBELL_QEMU_ACCEL=tcg).
 */
export function kvmUsable() {
  const accel = process.env.DOORBELL_QEMU_ACCEL;
  if (accel === "tcg") return false;
  if (accel !== "kvm" && existsSync(PVM_MODULE)) return false;
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** A free TCP port on 127.0.0.1 (closed again; QEMU binds it right after). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sets variables in the grubenv of a disk image's boot partition (mtools, no mount). */
export function setGrubenv(image, vars, dir) {
  const env = join(dir, "grubenv");
  execFileSync("mcopy", ["-o", "-n", "-i", `${image}${BOOT_PARTITION}`, "::/EFI/BOOT/grubenv", env]);
  execFileSync("grub-editenv", [env, "set", ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)]);
  execFileSync("mcopy", ["-o", "-n", "-i", `${image}${BOOT_PARTITION}`, env, "::/EFI/BOOT/grubenv"]);
}

/** Reads the grubenv of a disk image's boot partition as an object. */
export function readGrubenv(image, dir) {
  const env = join(dir, "grubenv.read");
  execFileSync("mcopy", ["-o", "-n", "-i", `${image}${BOOT_PARTITION}`, "::/EFI/BOOT/grubenv", env]);
  const vars = {};
  for (const line of execFileSync("grub-editenv", [env, "list"], { encoding: "utf8" }).split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}

/**
 * A VM on a private copy of `image` (decompressed from .zst if needed), with the debug shell on.
 * forwards: { name: guestTcpPort } -> host ports on 127.0.0.1, picked free (vm.ports[name]).
 */
export async function createVm({ image, forwards = {}, memoryMb = GUEST_MEMORY_MB }) {
  const dir = mkdtempSync(join(tmpdir(), "doorbell-vm-"));
  const disk = join(dir, "disk.img");
  if (image.endsWith(".zst")) execFileSync("zstd", ["-q", "-d", "--sparse", image, "-o", disk]);
  else execFileSync("cp", ["--sparse=always", image, disk]);
  setGrubenv(disk, { doorbell_cmdline: "doorbell.debug_shell" }, dir);
  const ports = {};
  for (const name of Object.keys(forwards)) ports[name] = await freePort();
  return new Vm({ dir, disk, forwards, ports, memoryMb });
}

class Vm {
  constructor({ dir, disk, forwards, ports, memoryMb }) {
    this.memoryMb = memoryMb;
    this.dir = dir;
    this.disk = disk;
    this.forwards = forwards;
    this.ports = ports;
    this.consoleLog = join(dir, "console.log");
    this.shellSocket = join(dir, "shell.sock");
    this.kvm = kvmUsable();
    this.proc = null;
    this.shell = null;
    this.buffer = "";
    this.seq = 0;
    /** Further raw disks (read-only), /dev/vdb onwards in the guest. */
    this.extraDrives = [];
  }

  /** Starts QEMU (the guest boots; call waitForShell next). Returns the wall-clock start. */
  start() {
    const hostfwd = Object.entries(this.forwards)
      .map(([name, guest]) => `,hostfwd=tcp:127.0.0.1:${this.ports[name]}-:${guest}`)
      .join("");
    const args = [
      // -cpu host fails in nested KVM (ARCH_CAPABILITIES MSR): QEMU's default model is enough.
      ...(this.kvm ? ["-enable-kvm"] : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
      "-machine", "pc", "-m", String(this.memoryMb), "-smp", "2",
      // SeaBIOS (QEMU's default) and the image's BIOS GRUB: same grub.cfg and grubenv as EFI.
      // Zero writes (RAUC copies whole slot images) punch holes: the copy stays sparse.
      "-drive", `file=${this.disk},format=raw,if=virtio,cache=unsafe,discard=unmap,detect-zeroes=unmap`,
      "-netdev", `user,id=n0${hostfwd}`, "-device", "virtio-net-pci,netdev=n0",
      ...this.extraDrives.flatMap((file) => ["-drive", `file=${file},format=raw,if=virtio,readonly=on`]),
      "-device", "virtio-rng-pci",
      "-display", "none", "-monitor", "none",
      "-serial", `file:${this.consoleLog}`,
      "-chardev", `socket,id=shell,path=${this.shellSocket},server=on,wait=off`,
      "-serial", "chardev:shell",
    ];
    writeFileSync(this.consoleLog, "");
    this.startedAt = Date.now();
    this.proc = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.stderr = "";
    this.proc.stderr.on("data", (d) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
    return this.startedAt;
  }

  console() {
    try {
      return readFileSync(this.consoleLog, "utf8");
    } catch {
      return "";
    }
  }

  /** The last lines of the serial console and QEMU's stderr, for failure messages. */
  tail(lines = 60) {
    return `--- console (last ${lines} lines) ---\n${this.console().split("\n").slice(-lines).join("\n")}\n--- qemu stderr ---\n${this.stderr}`;
  }

  async connectShell(timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        this.shell = await new Promise((resolve, reject) => {
          const s = connect(this.shellSocket, () => resolve(s));
          s.on("error", reject);
        });
        break;
      } catch (e) {
        if (this.proc.exitCode !== null) throw new Error(`QEMU exited (${this.proc.exitCode})\n${this.tail()}`);
        if (Date.now() > deadline) throw new Error(`no QEMU shell socket after ${timeoutMs} ms: ${e.message}\n${this.tail()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.shell.setEncoding("utf8");
    this.shell.on("data", (d) => {
      this.buffer += d;
      this.waiter?.();
    });
  }

  /** Waits until `pattern` appears in the shell output after `from`; returns the match. */
  async expect(pattern, timeoutMs, what, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.buffer.slice(from).match(pattern);
      if (m) return { match: m, end: from + m.index + m[0].length };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n--- shell ---\n${this.buffer.slice(-2000)}\n${this.tail()}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /**
   * Waits for the guest's debug shell (it starts with multi-user.target, after doorbelld is
   * started but not necessarily ready): pokes it until it answers.
   */
  async waitForShell(timeoutMs = this.kvm ? 120_000 : 300_000) {
    const deadline = Date.now() + timeoutMs;
    if (!this.shell) await this.connectShell(timeoutMs);
    for (;;) {
      const token = `ready-${++this.seq}`;
      const from = this.buffer.length;
      this.shell.write(`stty -echo; echo ${token.replace("-", "''-")}\n`);
      try {
        await this.expect(new RegExp(`${token}\\r?\\n`), 2000, "the shell", from);
        return Date.now() - this.startedAt;
      } catch (e) {
        if (this.proc.exitCode !== null) throw new Error(`QEMU exited (${this.proc.exitCode})\n${this.tail()}`);
        if (Date.now() > deadline) throw new Error(`no shell after ${timeoutMs} ms\n${e.message}`);
      }
    }
  }

  /** Runs a shell command in the guest; returns { code, out }. */
  async run(command, timeoutMs = COMMAND_TIMEOUT_MS) {
    const id = ++this.seq;
    const from = this.buffer.length;
    // The markers are built by printf so that an echoed command line can never match them.
    this.shell.write(`printf '@@B%s\\n' ${id}; ( ${command} ) 2>&1; printf '@@E%s %s\\n' ${id} $?\n`);
    const begin = await this.expect(new RegExp(`@@B${id}\\r?\\n`), timeoutMs, `start of: ${command}`, from);
    const end = await this.expect(new RegExp(`@@E${id} (\\d+)\\r?\\n`), timeoutMs, `end of: ${command}`, begin.end);
    const out = this.buffer.slice(begin.end, end.end - end.match[0].length).replace(/\r/g, "");
    return { code: Number(end.match[1]), out: out.replace(/\n$/, "") };
  }

  /** Runs a command that must succeed; returns its output. */
  async sh(command, timeoutMs) {
    const { code, out } = await this.run(command, timeoutMs);
    if (code !== 0) throw new Error(`guest command failed (${code}): ${command}\n${out}`);
    return out;
  }

  /** Polls `command` every `intervalMs` until it exits 0; returns its output. */
  async waitFor(command, timeoutMs, what, intervalMs = 500) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.run(command);
      if (last.code === 0) return last.out;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${command} -> ${last.code}\n${last.out}`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Reboots the guest (same QEMU process) and waits for the shell again. */
  async reboot(timeoutMs = this.kvm ? 180_000 : 400_000) {
    const from = this.console().length;
    this.shell.write("systemctl reboot\n");
    await this.waitForConsole(/reboot: Restarting system/, timeoutMs, "the guest to reboot", from);
    this.buffer = "";
    this.startedAt = Date.now();
    return this.waitForShell(timeoutMs);
  }

  /** Waits until `pattern` shows on the serial console after offset `from`. */
  async waitForConsole(pattern, timeoutMs, what, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.console().slice(from).match(pattern);
      if (m) return m;
      if (this.proc.exitCode !== null) throw new Error(`QEMU exited while waiting for ${what}\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop() {
    this.shell?.destroy();
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill("SIGTERM");
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.proc.exitCode === null) this.proc.kill("SIGKILL");
    }
    if (!process.env.DOORBELL_KEEP_VM) rmSync(this.dir, { recursive: true, force: true });
  }
}
