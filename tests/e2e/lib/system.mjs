// Starts the real system for end-to-end tests and benchmarks: a `doorbell-hub` on
// 127.0.0.1:0, a door registered with it, and a `doorbelld` with test sources connected to it.
// Everything talks through the documented interfaces: the hub's CLI, DOORBELL__* environment
// variables, `doorbelld press|status|hangup`.
//
// The NAT tests (tests/nat) run the hub and the door in network namespaces of their own: then
// the hub listens on a non-loopback address with its self-signed certificate, which the door
// trusts through `hub.ca_file`, exactly as README's "Running a hub and doors separately" says.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import net from 'node:net';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PROFILE = process.env.DOORBELL_PROFILE || 'debug';
export const HUB_BIN = process.env.DOORBELL_HUB_BIN || join(ROOT, 'target', PROFILE, 'doorbell-hub');
export const DOOR_BIN = process.env.DOORBELLD_BIN || join(ROOT, 'target', PROFILE, 'doorbelld');
/// Prefix for running the door binary, e.g. "qemu-aarch64" for the cross-built one.
const DOOR_RUNNER = process.env.DOORBELLD_RUNNER ? process.env.DOORBELLD_RUNNER.split(' ') : [];

/** Resolve with the first match of `pattern` in a child's output stream, or reject after `ms`. */
export function waitForOutput(stream, pattern, ms = 30_000, what = String(pattern)) {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}; output so far:\n${seen.slice(-4000)}`));
    }, ms);
    const onData = (chunk) => {
      seen += chunk.toString();
      const match = seen.match(pattern);
      if (match) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolvePromise(match);
      }
    };
    stream.on('data', onData);
  });
}

/** Keep the last output of a child for failure messages, and echo it when DEBUG is set. */
export function capture(child, name) {
  const log = [];
  for (const [label, stream] of [['out', child.stdout], ['err', child.stderr]]) {
    stream.setEncoding('utf8');
    stream.on('data', (text) => {
      log.push(text);
      if (log.length > 400) log.shift();
      if (process.env.DEBUG) process.stderr.write(`[${name} ${label}] ${text}`);
    });
  }
  return () => log.join('');
}

export async function hubCli(db, ...args) {
  const { stdout } = await run(HUB_BIN, ['--db', db, ...args], { timeout: 30_000 });
  return stdout;
}

/** `[cmd, args]` that run `bin args` inside network namespace `ns` (as is without one). */
function inNamespace(ns, bin, args) {
  return ns ? ['ip', ['netns', 'exec', ns, bin, ...args]] : [bin, args];
}

/** Spawn `doorbell-hub serve` with `serveArgs` (in namespace `ns`) and wait until it listens. */
async function spawnHub(serveArgs, ns) {
  const proc = spawn(...inNamespace(ns, HUB_BIN, serveArgs), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  const log = capture(proc, 'hub');
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  try {
    const [, baseUrl] = await Promise.race([
      waitForOutput(proc.stdout, /Listening on (https?:\/\/\S+)/, 30_000, 'hub listening'),
      exited.then((exit) => {
        throw new Error(`the hub exited before listening (${JSON.stringify(exit)})`);
      }),
    ]);
    return { proc, log, exited, baseUrl };
  } catch (e) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    throw new Error(`${e.message}\n--- hub log ---\n${log()}`);
  }
}

/**
 * Start hub + door. Returns helpers to pair phones, press the button, read the door's status,
 * kill and restart the hub, and stop everything.
 *
 * options.prepareDoor({hubPort}) -> {wsUrl?, wrap?(cmd, args) -> [cmd, args], env?}: run the
 *                    door elsewhere (e.g. in a network namespace, through a forwarder); see
 *                    lib/netns.mjs.
 * options.netns      { hub, door }: network namespaces to run them in (tests/nat; needs root)
 * options.hubListen  the hub's --listen (default 127.0.0.1:0). Not loopback: HTTPS with the
 *                    hub's self-signed certificate, made for that address, trusted by the door
 * options.hubConfig  TOML text for `doorbell-hub serve --config` (e.g. a [turn] table)
 * options.hubArgs    more `serve` arguments
 */
export async function startSystem({
  doorName = 'Front door',
  doorEnv = {},
  prepareDoor,
  netns = {},
  hubListen = '127.0.0.1:0',
  hubConfig = null,
  hubArgs = [],
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'doorbell-e2e-'));
  const db = join(dir, 'hub.sqlite3');
  const door = JSON.parse(await hubCli(db, 'add-door', doorName, '--json'));

  const hubHost = hubListen.slice(0, hubListen.lastIndexOf(':')); // IPv4 only: tests use no IPv6
  const loopback = hubHost === '127.0.0.1';
  const serveArgs = (listen) => {
    const args = ['--db', db, 'serve', '--listen', listen, ...hubArgs];
    // The self-signed certificate names the hub's address only if the public URL has it; the
    // port is known after binding, so pairing links get the full URL below.
    args.push(...(loopback ? ['--insecure-http'] : ['--public-url', `https://${hubHost}`]));
    if (hubConfig != null) args.push('--config', join(dir, 'hub.toml'));
    return args;
  };
  if (hubConfig != null) writeFileSync(join(dir, 'hub.toml'), hubConfig);
  /** A start-up failure: stop what runs, remove the directory, and throw with the logs. */
  const abort = (message, children) => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw new Error(message);
  };
  let hub = await spawnHub(serveArgs(hubListen), netns.hub).catch((e) => abort(e.message, []));
  const hubLogs = [hub.log];
  const hubLog = () => hubLogs.map((l) => l()).join('\n--- hub restarted ---\n');
  const baseUrl = hub.baseUrl;
  const hubPort = Number(new URL(baseUrl).port);
  const prepared = prepareDoor ? await prepareDoor({ hubPort }) : {};
  const wsUrl = prepared.wsUrl ?? baseUrl.replace(/^http/, 'ws') + '/ws';

  const stateDir = join(dir, 'door');
  const socket = join(stateDir, 'control.sock');
  const env = {
    ...process.env,
    RUST_LOG: process.env.RUST_LOG || 'info,doorbelld=debug',
    GST_DEBUG: process.env.GST_DEBUG || '1',
    DOORBELL__STATE_DIR: stateDir,
    DOORBELL__HUB__URL: wsUrl,
    DOORBELL__HUB__DOOR_ID: door.door_id,
    DOORBELL__HUB__SECRET: door.secret,
    DOORBELL__MEDIA__CAMERA: 'test',
    DOORBELL__MEDIA__MICROPHONE: 'test',
    DOORBELL__MEDIA__SPEAKER: 'none',
    DOORBELL__MEDIA__ICE_LOCAL_ADDRESSES: '127.0.0.1',
    DOORBELL__BUTTON__STDIN: 'false',
    ...(loopback ? {} : { DOORBELL__HUB__CA_FILE: join(dir, 'cert.pem') }),
    ...prepared.env,
    ...doorEnv,
  };
  const [runCmd, ...pre] = DOOR_RUNNER.length ? DOOR_RUNNER : [DOOR_BIN];
  const runArgs = DOOR_RUNNER.length ? [...pre, DOOR_BIN] : [];
  const [cmd, doorArgs] = prepared.wrap ? prepared.wrap(runCmd, runArgs) : inNamespace(netns.door, runCmd, runArgs);
  const doorProc = spawn(cmd, doorArgs, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const doorLog = capture(doorProc, 'door');
  const doorExited = new Promise((r) => doorProc.on('exit', (code, signal) => r({ code, signal })));
  await waitForOutput(doorProc.stdout, /Door online: /, 120_000, 'door online').catch((e) =>
    abort(`${e.message}\n--- door log ---\n${doorLog()}\n--- hub log ---\n${hubLog()}`, [doorProc, hub.proc]),
  );

  const control = (command) =>
    new Promise((resolvePromise, reject) => {
      const client = net.createConnection(socket, () => client.write(`${command}\n`));
      let reply = '';
      client.setEncoding('utf8');
      client.on('data', (d) => (reply += d));
      client.on('end', () => resolvePromise(reply.trim()));
      client.on('error', reject);
      client.setTimeout(5000, () => client.destroy(new Error(`control ${command}: no reply`)));
    });

  return {
    dir,
    db,
    door,
    baseUrl,
    hubPort,
    doorProc,
    get hubProc() {
      return hub.proc;
    },
    env,
    /** Everything the door logged so far. */
    doorLog: () => doorLog(),
    /** Everything the hub logged so far. */
    hubLog: () => hubLog(),
    logs: () => `--- door log ---\n${doorLog().slice(-6000)}\n--- hub log ---\n${hubLog().slice(-3000)}`,
    /** Kill the hub (SIGKILL by default: a crash, no goodbye to anyone) and wait until it is gone. */
    async killHub(signal = 'SIGKILL') {
      if (hub.proc.exitCode === null && hub.proc.signalCode === null) hub.proc.kill(signal);
      return hub.exited;
    },
    /** Start the hub again on the same port and database (after killHub). */
    async restartHub() {
      hub = await spawnHub(serveArgs(`${hubHost}:${hubPort}`), netns.hub);
      hubLogs.push(hub.log);
      return hub.baseUrl;
    },
    /**
     * A one-time pairing link made by the door (`doorbelld pair`, through its control socket):
     * only the door can admit a phone. The door builds it on the hub URL it dials; the phone
     * opens it on the URL phones use (they differ when the door is behind a forwarder).
     */
    async pairingUrl() {
      const out = await control('pair');
      const hash = out.indexOf('#pair=');
      if (!out.startsWith('http') || hash < 0) throw new Error(`no pairing URL in: ${out}`);
      return `${baseUrl}/${out.slice(hash)}`;
    },
    /** Press through the documented CLI (`doorbelld press`). */
    async pressCli() {
      const { stdout } = await run(DOOR_RUNNER.length ? DOOR_RUNNER[0] : DOOR_BIN,
        [...(DOOR_RUNNER.length ? [...DOOR_RUNNER.slice(1), DOOR_BIN] : []), 'press'],
        { env, timeout: 30_000 });
      return stdout.trim();
    },
    /** Press through the control socket directly (what `doorbelld press` does), for timing. */
    press: () => control('press'),
    status: async () => JSON.parse(await control('status')),
    /**
     * Poll `doorbelld status` until `predicate(status)` holds; returns that status, or throws
     * with the last one and the logs after `ms`. Polling, because the status command is the
     * documented interface and it has no change notifications; 50 ms keeps the socket quiet.
     */
    async waitForStatus(predicate, what, ms = 20_000) {
      const deadline = Date.now() + ms;
      let last;
      for (;;) {
        last = JSON.parse(await control('status'));
        if (predicate(last)) return last;
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`door status never showed ${what} within ${ms} ms; last: ${JSON.stringify(last)}\n${this.logs()}`);
    },
    hangup: () => control('hangup'),
    /** Resolve when the door logs that the call ended. */
    callEnded: (ms = 20_000) => waitForOutput(doorProc.stderr, /call ended/, ms, 'door: call ended'),
    async stop() {
      for (const child of [doorProc, hub.proc]) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      }
      const timeout = (ms) => new Promise((r) => setTimeout(r, ms));
      const exited = await Promise.race([doorExited.then(() => true), timeout(10_000).then(() => false)]);
      if (!exited) doorProc.kill('SIGKILL');
      await Promise.race([hub.exited, timeout(10_000)]);
      if (hub.proc.exitCode === null && hub.proc.signalCode === null) hub.proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      return doorExited;
    },
  };
}
