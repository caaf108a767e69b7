// The door in its own network namespace, so a test can cut its network to the hub for real.
//
//   root namespace                                   namespace "dbheal-<pid>-<n>"
//   hub 127.0.0.1:P <- forwarder <hostAddr>:F  <==veth==>  <doorAddr> <- forwarder 127.0.0.1:L
//   phone (Chromium) on loopback                                         doorbelld ws://127.0.0.1:L/ws
//
// The hub keeps listening on loopback (plain HTTP is loopback-only, and the door speaks plain
// ws:// only to loopback); a small TCP forwarder beside the test carries the door's
// connection from the veth to it, and one inside the namespace gives the door a hub on its own
// loopback, so every hub packet still crosses the veth. `cut()` adds DROP rules
// inside the door's namespace: packets vanish silently (no RST, no ICMP), the nastiest case,
// and only the door's namespace is touched. `destroy()` deletes the namespace, which removes
// its rules and the veth pair. Needs root (CI runs as root).

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Every namespace and veth these tests create starts with this, so leftovers can be found. */
export const NETNS_PREFIX = 'dbheal-';
let counter = 0;

async function ip(...args) {
  return (await run('ip', args, { timeout: 10_000 })).stdout;
}

export function requireRoot() {
  if (process.getuid?.() !== 0) {
    throw new Error('this test puts the door in a network namespace and needs root (CI runs as root): run it with sudo');
  }
}

/** Delete namespaces and veths of earlier runs that did not clean up (killed test runs). */
export async function removeLeftovers() {
  const names = (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(NETNS_PREFIX));
  for (const name of names) {
    const pid = Number(name.split('-')[1]);
    if (pid && pid !== process.pid && processAlive(pid)) continue; // another live test run
    await ip('netns', 'delete', name).catch(() => {});
  }
  const links = (await ip('-o', 'link', 'show')).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean);
  // Only names this file makes (dbh<pid>x<n>): never another program's interfaces.
  for (const link of links.filter((l) => /^dbh\d+x\d+$/.test(l))) {
    const pid = Number(link.slice(3).split('x')[0]);
    if (pid && pid !== process.pid && processAlive(pid)) continue;
    await ip('link', 'delete', link).catch(() => {});
  }
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A free /30 in 10.213.0.0/16 (random, checked against the addresses in use). */
async function pickSubnet() {
  const used = await ip('-4', '-o', 'addr', 'show');
  for (let i = 0; i < 50; i += 1) {
    const third = Math.floor(Math.random() * 256);
    const fourth = Math.floor(Math.random() * 64) * 4;
    const host = `10.213.${third}.${fourth + 1}`;
    const door = `10.213.${third}.${fourth + 2}`;
    if (!used.includes(` 10.213.${third}.`)) return { host, door };
  }
  throw new Error('no free 10.213.x.y/30 subnet for the test namespace');
}

const TCP_FORWARD = fileURLToPath(new URL('./tcp_forward.mjs', import.meta.url));

/**
 * Start tcp_forward.mjs: connections to listenHost:L (L printed by it) go to host:port. With
 * `ns`, inside that network namespace.
 */
async function forwarder({ ns = null, listenHost, host, port }) {
  const args = [TCP_FORWARD, listenHost, host, String(port)];
  const [cmd, cmdArgs] = ns ? ['ip', ['netns', 'exec', ns, process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const listening = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`the TCP forwarder exited (${code}) before listening`)));
  });
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("the TCP forwarder did not listen within 10 s")), 10_000).unref());
  const localPort = await Promise.race([listening, timeout]).catch((e) => {
    child.kill();
    throw e;
  });
  return {
    port: localPort,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill();
      await once(child, 'exit');
    },
  };
}

/**
 * Create the namespace and veth pair. Returns {name, hostAddr, doorAddr, prepareDoor, cut(),
 * restore(), destroy()}; pass `prepareDoor` to startSystem.
 */
export async function createDoorNetns() {
  requireRoot();
  await removeLeftovers();
  counter += 1;
  const name = `${NETNS_PREFIX}${process.pid}-${counter}`;
  // Interface names are at most 15 characters.
  const vethHost = `dbh${process.pid}x${counter}`.slice(0, 15);
  const vethDoor = 'eth0';
  const { host, door } = await pickSubnet();
  let fwd = null;
  let nsFwd = null;
  let cutRules = [];
  const inNs = (...args) => run('ip', ['netns', 'exec', name, ...args], { timeout: 10_000 });
  const destroy = async () => {
    await nsFwd?.close();
    nsFwd = null;
    await fwd?.close();
    fwd = null;
    await ip('netns', 'delete', name).catch(() => {});
    await ip('link', 'delete', vethHost).catch(() => {});
  };
  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', vethHost, 'type', 'veth', 'peer', 'name', `${vethHost}p`);
    await ip('link', 'set', `${vethHost}p`, 'netns', name);
    await inNs('ip', 'link', 'set', `${vethHost}p`, 'name', vethDoor);
    await ip('addr', 'add', `${host}/30`, 'dev', vethHost);
    await ip('link', 'set', vethHost, 'up');
    await inNs('ip', 'addr', 'add', `${door}/30`, 'dev', vethDoor);
    await inNs('ip', 'link', 'set', vethDoor, 'up');
    await inNs('ip', 'link', 'set', 'lo', 'up');
  } catch (e) {
    await destroy();
    throw new Error(`cannot set up the door's network namespace: ${e.message}`);
  }
  return {
    name,
    hostAddr: host,
    doorAddr: door,
    async prepareDoor({ hubPort }) {
      fwd = await forwarder({ listenHost: host, host: '127.0.0.1', port: hubPort });
      nsFwd = await forwarder({ ns: name, listenHost: '127.0.0.1', host, port: fwd.port });
      return {
        wsUrl: `ws://127.0.0.1:${nsFwd.port}/ws`,
        wrap: (cmd, args) => ['ip', ['netns', 'exec', name, cmd, ...args]],
        env: { DOORBELL__MEDIA__ICE_LOCAL_ADDRESSES: door },
      };
    },
    /**
     * Silently drop every packet in and out of the door's namespace; with `{ hubOnly: true }`
     * only the door's TCP connection to the hub, so a call's media keeps flowing.
     */
    async cut({ hubOnly = false } = {}) {
      const only = hubOnly ? ['-p', 'tcp', '--dport', String(fwd.port)] : [];
      const onlyIn = hubOnly ? ['-p', 'tcp', '--sport', String(fwd.port)] : [];
      cutRules = [
        ['INPUT', '-i', vethDoor, ...onlyIn, '-j', 'DROP'],
        ['OUTPUT', '-o', vethDoor, ...only, '-j', 'DROP'],
      ];
      for (const rule of cutRules) await inNs('iptables', '-I', ...rule);
    },
    async restore() {
      for (const rule of cutRules) await inNs('iptables', '-D', ...rule);
      cutRules = [];
    },
    destroy,
  };
}
