// A NAT test bed out of Linux network namespaces (needs root: `ip netns`, veth, iptables, tc).
//
// Topology "nat" (the default): the door and the phone each sit on a private LAN behind their
// own NAT router; the routers' WAN sides share one "public" segment with the hub and TURN. The
// NATs are symmetric (MASQUERADE --random-fully: a new random port per destination), so two
// peers behind them cannot punch a hole to each other and only a relay connects them. The
// routers have no route to the other LAN, so a host candidate of one side is unreachable from
// the other.
//
//   door ns               door-router ns                 public ns                 phone-router ns              phone ns
//   eth0 10.1.0.2 ── lan 10.1.0.1 | wan 198.18.0.2 ── br0 198.18.0.1 ── wan 198.18.0.3 | lan 10.2.0.1 ── eth0 10.2.0.2
//                   (MASQUERADE --random-fully)      (hub, TURN)         (MASQUERADE --random-fully)
//
// Topology "flat": door and phone on the public segment itself, no NAT (a home LAN):
//
//   door ns eth0 198.18.0.20 ── br0 198.18.0.1 (public ns: hub, TURN) ── eth0 198.18.0.30 phone ns
//
// The public segment is 198.18.0.0/24 from the benchmarking range (RFC 2544): never routed on
// the Internet, and not one of the private/loopback/CGNAT ranges a TURN server's peer policy
// refuses. Traffic never leaves the namespaces made here: none of them has a link to the
// machine's own network.
//
// Latency: `doorWanDelayMs` delays the door router's WAN link in both directions, with
// `tc netem` where the kernel has it, else with a small userspace delay line (delayline.py).
//
// Every namespace is named `dbnat-<pid>-<n>-<role>`, so parallel runs do not collide and
// `cleanupStale()` can remove what a crashed run (a dead pid) left behind.

import { execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { waitForOutput } from "../../e2e/lib/system.mjs";

const run = promisify(execFile);
const DELAY_LINE = fileURLToPath(new URL("./delayline.py", import.meta.url));

export const PREFIX = "dbnat-";

export const PUBLIC_NET = "198.18.0.0/24";
/** PUBLIC_NET as a first-last range (coturn's --allowed-peer-ip syntax). */
export const PUBLIC_RANGE = "198.18.0.0-198.18.0.255";
/** The public namespace's address: the hub and the TURN servers listen here. */
export const PUBLIC_IP = "198.18.0.1";

const NAT_PLAN = {
  door: { lan: "10.1.0", wan: "198.18.0.2" },
  phone: { lan: "10.2.0", wan: "198.18.0.3" },
};
const FLAT_PLAN = { door: "198.18.0.20", phone: "198.18.0.30" };

/** Runs `cmd args` and returns stdout; an error names the command and its stderr. */
export async function sh(cmd, args, { timeout = 15_000 } = {}) {
  try {
    const { stdout } = await run(cmd, args, { timeout });
    return stdout;
  } catch (e) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`, { cause: e });
  }
}

const ip = (...args) => sh("ip", args);
/** `cmd args` inside namespace `ns`. */
export const nsExec = (ns, cmd, args, options) => sh("ip", ["netns", "exec", ns, cmd, ...args], options);

/** The command line prefix that runs a program inside `ns`. */
export const nsPrefix = (ns) => ["ip", "netns", "exec", ns];

/** Throws a clear error unless we can make namespaces (root, iproute2, iptables, tc). */
export async function requireRoot() {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "the NAT test bed needs root (ip netns, veth, iptables, tc): run as root, e.g. `sudo node --test tests/nat/` (CI runs as root)",
    );
  }
  for (const [tool, args] of [["ip", ["-V"]], ["iptables", ["--version"]], ["tc", ["-V"]]]) {
    await sh(tool, args).catch((e) => {
      throw new Error(`${tool} is missing (apt-get install iproute2 iptables): ${e.message}`);
    });
  }
}

async function listOurNamespaces() {
  const out = await ip("netns", "list");
  return out
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((name) => name.startsWith(PREFIX));
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

/**
 * Deletes one namespace: first the processes inside it (all started by a test bed: the hub,
 * TURN, the door, Chromium), then the namespace, which takes its veth ends with it.
 */
async function deleteNamespace(name) {
  const pids = (await ip("netns", "pids", name).catch(() => ""))
    .split("\n")
    .filter(Boolean)
    .map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await ip("netns", "delete", name).catch(() => {});
}

/** Removes namespaces left by test beds whose process is gone (a crashed or killed run). */
export async function cleanupStale() {
  for (const name of await listOurNamespaces()) {
    const owner = Number(name.slice(PREFIX.length).split("-")[0]);
    if (Number.isInteger(owner) && owner !== process.pid && !pidAlive(owner)) await deleteNamespace(name);
  }
}

let beds = 0;

/**
 * Builds a test bed. `topology` is "nat" or "flat". `doorWanDelayMs` (nat only) delays every
 * packet on the link between the door's router and the public segment by that much in each
 * direction: door -> relay -> phone and back crosses it twice, so the door-phone round trip
 * grows by 2 * doorWanDelayMs. Returns
 * {
 *   ns: { public, door, phone, doorRouter?, phoneRouter? },   namespace names
 *   addr: { public, door, phone, doorWan?, phoneWan? },       IPv4 addresses
 *   topology,
 *   linkDelay,        how doorWanDelayMs was made: null, "netem" or "delay line"
 *   tcpProbe(ns, host, port) -> "connected" | "refused" | "unreachable" | "timeout" | error code
 *   destroy(),        kill what runs inside and delete the namespaces (idempotent)
 * }
 * On any error while building, what was made is torn down before the error is thrown.
 */
export async function createTestBed({ topology = "nat", doorWanDelayMs = 0 } = {}) {
  if (topology !== "nat" && topology !== "flat") throw new Error(`unknown topology ${topology}`);
  if (doorWanDelayMs && topology !== "nat") throw new Error("doorWanDelayMs needs the nat topology");
  await requireRoot();
  await cleanupStale();
  const tag = `${PREFIX}${process.pid}-${beds++}`;
  const name = (role) => `${tag}-${role}`;
  const made = [];
  const children = [];
  let linkDelay = null;
  const addNs = async (role) => {
    const ns = name(role);
    await ip("netns", "add", ns);
    made.push(ns);
    // IPv4 only. Without this, each interface gets an IPv6 link-local address a moment after it
    // comes up, and Chromium, seeing the network change, aborts a page load in progress
    // (net::ERR_NETWORK_CHANGED).
    await nsExec(ns, "sysctl", ["-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
    await ip("-n", ns, "link", "set", "lo", "up");
    return ns;
  };
  const destroy = async () => {
    for (const child of children.splice(0)) await stopChild(child);
    while (made.length) await deleteNamespace(made.pop());
  };

  try {
    const pub = await addNs("pub");
    await ip("-n", pub, "link", "add", "br0", "type", "bridge");
    await ip("-n", pub, "addr", "add", `${PUBLIC_IP}/24`, "dev", "br0");
    await ip("-n", pub, "link", "set", "br0", "up");

    /** A veth from the public bridge (port `port`) to `ns` (as `ifname`, still down). */
    const plugIntoPublic = async (port, ns, ifname) => {
      await ip("-n", pub, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns);
      await ip("-n", pub, "link", "set", port, "master", "br0", "up");
    };

    if (topology === "flat") {
      const door = await addNs("door");
      const phone = await addNs("phone");
      for (const [role, ns] of [["door", door], ["phone", phone]]) {
        await plugIntoPublic(role, ns, "eth0");
        await ip("-n", ns, "addr", "add", `${FLAT_PLAN[role]}/24`, "dev", "eth0");
        await ip("-n", ns, "link", "set", "eth0", "up");
      }
      return {
        topology,
        linkDelay,
        ns: { public: pub, door, phone },
        addr: { public: PUBLIC_IP, door: FLAT_PLAN.door, phone: FLAT_PLAN.phone },
        tcpProbe,
        destroy,
      };
    }

    const sides = {};
    for (const side of ["door", "phone"]) {
      const plan = NAT_PLAN[side];
      const router = await addNs(`${side}-router`);
      const host = await addNs(side);
      if (side === "door" && doorWanDelayMs) {
        linkDelay = await delayedLink({ pub, port: side, ns: router, ifname: "wan", delayMs: doorWanDelayMs, plug: plugIntoPublic, children });
      } else {
        await plugIntoPublic(side, router, "wan");
      }
      await ip("-n", router, "addr", "add", `${plan.wan}/24`, "dev", "wan");
      await ip("-n", router, "link", "set", "wan", "up");
      await ip("-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", host);
      await ip("-n", router, "addr", "add", `${plan.lan}.1/24`, "dev", "lan");
      await ip("-n", router, "link", "set", "lan", "up");
      await ip("-n", host, "addr", "add", `${plan.lan}.2/24`, "dev", "eth0");
      await ip("-n", host, "link", "set", "eth0", "up");
      await ip("-n", host, "route", "add", "default", "via", `${plan.lan}.1`);
      // The router forwards LAN -> WAN only, and hides the LAN behind a symmetric NAT. It has no
      // route to the other LAN (nor a default route), so the other side's host candidates are
      // unreachable: a packet to them gets "network unreachable" right at its own router.
      await nsExec(router, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
      await nsExec(router, "iptables", ["-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE", "--random-fully"]);
      await nsExec(router, "iptables", ["-P", "FORWARD", "DROP"]);
      await nsExec(router, "iptables", ["-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT"]);
      await nsExec(router, "iptables", [
        "-A", "FORWARD", "-i", "wan", "-o", "lan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT",
      ]);
      sides[side] = { router, host, ip: `${plan.lan}.2`, wan: plan.wan };
    }

    return {
      topology,
      /** How the door's WAN link is delayed: null, "netem" or "delay line". */
      linkDelay,
      ns: {
        public: pub,
        door: sides.door.host,
        phone: sides.phone.host,
        doorRouter: sides.door.router,
        phoneRouter: sides.phone.router,
      },
      addr: {
        public: PUBLIC_IP,
        door: sides.door.ip,
        phone: sides.phone.ip,
        doorWan: sides.door.wan,
        phoneWan: sides.phone.wan,
      },
      tcpProbe,
      destroy,
    };
  } catch (e) {
    await destroy();
    throw e;
  }
}

let netemAvailable;

/** Whether this kernel has `tc netem` (some VM kernels are built without sch_netem). */
async function hasNetem(ns) {
  if (netemAvailable === undefined) {
    netemAvailable = await nsExec(ns, "tc", ["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]).then(
      () => true,
      () => false,
    );
    if (netemAvailable) await nsExec(ns, "tc", ["qdisc", "del", "dev", "lo", "root"]);
  }
  return netemAvailable;
}

/**
 * Links `ns` (as `ifname`) to the public bridge (as `port`) with `delayMs` of latency in each
 * direction: `tc netem` on both ends' egress where the kernel has it, else a userspace delay line
 * (delayline.py: two TAP interfaces and a queue). Returns which one it used.
 */
async function delayedLink({ pub, port, ns, ifname, delayMs, plug, children }) {
  if (await hasNetem(pub)) {
    await plug(port, ns, ifname);
    await nsExec(ns, "tc", ["qdisc", "add", "dev", ifname, "root", "netem", "delay", `${delayMs}ms`]);
    await nsExec(pub, "tc", ["qdisc", "add", "dev", port, "root", "netem", "delay", `${delayMs}ms`]);
    return "netem";
  }
  // The delay line opens `ifname` in `ns` first and the bridge port in `pub` last, so it stays
  // in the public namespace, where deleting the bed finds it even if this process dies; it also
  // exits when its stdin (this process) goes away.
  const child = spawn("python3", [DELAY_LINE, String(delayMs), ns, ifname, pub, port], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t) => (stderr += t));
  const exited = new Promise((r) => child.on("exit", (code) => r(code)));
  await Promise.race([
    waitForOutput(child.stdout, /^ready$/m, 10_000, "the delay line to be ready"),
    exited.then((code) => {
      throw new Error(`delayline.py exited (${code}): ${stderr}`);
    }),
  ]);
  await ip("-n", pub, "link", "set", port, "master", "br0", "up");
  return "delay line";
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.on("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/**
 * Opens a TCP connection from inside `ns` to host:port and reports what happened:
 * "connected", "refused" (the host answered: it is reachable), "unreachable" (a router said
 * there is no route), or "timeout". Runs node itself inside the namespace.
 */
export async function tcpProbe(ns, host, port, timeoutMs = 3000) {
  const script = `
    const s = require("node:net").connect({ host: ${JSON.stringify(host)}, port: ${Number(port)} });
    const done = (r) => { console.log(r); process.exit(0); };
    s.setTimeout(${Number(timeoutMs)}, () => done("timeout"));
    s.on("connect", () => done("connected"));
    s.on("error", (e) => done(e.code === "ECONNREFUSED" ? "refused"
      : ["EHOSTUNREACH", "ENETUNREACH"].includes(e.code) ? "unreachable" : e.code));`;
  return (await nsExec(ns, process.execPath, ["-e", script], { timeout: timeoutMs + 10_000 })).trim();
}
