// TURN for the NAT test bed: the hub's `[turn]` configuration (embedded TURN or an external
// one), Debian's coturn started in the public namespace, and TURN REST API credentials.
//
// The hub side is the interface of issue 5 item 1 (`doorbell-hub serve --config hub.toml`, a
// `[turn]` table; per-call `ice_servers` in `ring` and `answered`). Both TURN servers share one
// secret scheme: username "expiry:id", password base64(HMAC-SHA1(secret, username)).

import { spawn, execFile } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { capture } from "../../e2e/lib/system.mjs";
import { PUBLIC_IP, PUBLIC_NET, PUBLIC_RANGE, nsPrefix } from "./netns.mjs";

const run = promisify(execFile);

export const REALM = "doorbell.test";
/** coturn's fixed port: it cannot pick a free one, and it runs alone in the bed's public namespace. */
export const COTURN_PORT = 3478;
// Distinct relay port ranges, so a test can tell which server relayed a call from the relay
// candidate's port.
export const EMBEDDED_RELAY_PORTS = [49152, 49407];
export const COTURN_RELAY_PORTS = [50000, 50255];

/** A fresh shared secret in a 0600 file in a temporary directory: { dir, secret, file, remove() }. */
export function makeSecret() {
  const dir = mkdtempSync(join(tmpdir(), "doorbell-turn-"));
  const secret = randomBytes(24).toString("hex");
  const file = join(dir, "turn-secret");
  // No trailing newline: the hub and coturn must see the very same bytes.
  writeFileSync(file, secret, { mode: 0o600 });
  return { dir, secret, file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** TURN REST API credentials (what the hub hands out per call), valid `ttlSecs`. */
export function restCredentials(secret, id, ttlSecs = 600) {
  const username = `${Math.floor(Date.now() / 1000) + ttlSecs}:${id}`;
  const credential = createHmac("sha1", secret).update(username).digest("base64");
  return { username, credential };
}

/** hub.toml: the hub's embedded TURN on the public address, relaying within the bed only. */
export function embeddedTurnConfig(secretFile) {
  return `[turn]
mode = "embedded"
listen = "${PUBLIC_IP}:0"
relay_address = "${PUBLIC_IP}"
relay_ports = "${EMBEDDED_RELAY_PORTS.join("-")}"
secret_file = "${secretFile}"
realm = "${REALM}"
# The bed's public segment is a benchmarking range (198.18.0.0/15); allow it explicitly anyway,
# so the test never depends on how the peer policy classifies it.
allow_peers = ["${PUBLIC_NET}"]
`;
}

/** hub.toml: an external TURN (coturn) on the public address with the same secret. */
export function externalTurnConfig(secretFile) {
  return `[turn]
mode = "external"
urls = ["turn:${PUBLIC_IP}:${COTURN_PORT}?transport=udp"]
secret_file = "${secretFile}"
realm = "${REALM}"
`;
}

/**
 * Starts Debian's coturn in namespace `ns` on PUBLIC_IP:3478 with REST API (shared secret)
 * authentication, and waits until it answers a STUN binding request. Returns { stop(), logs() }.
 */
export async function startCoturn(ns, secret) {
  const dir = mkdtempSync(join(tmpdir(), "doorbell-coturn-"));
  const emptyConf = join(dir, "turnserver.conf");
  writeFileSync(emptyConf, "# the command line says it all; never read /etc/turnserver.conf\n");
  const args = [
    "-c", emptyConf,
    "--use-auth-secret", `--static-auth-secret=${secret}`, `--realm=${REALM}`,
    `--listening-ip=${PUBLIC_IP}`, `--relay-ip=${PUBLIC_IP}`, `--listening-port=${COTURN_PORT}`,
    `--min-port=${COTURN_RELAY_PORTS[0]}`, `--max-port=${COTURN_RELAY_PORTS[1]}`,
    "--no-cli", "--no-tls", "--no-dtls", "--no-tcp-relay", "--fingerprint", "--no-software-attribute",
    // Production hardening (coturn's example config), and what the embedded TURN's peer policy
    // does: no relaying into private networks. It matters here too: relaying to a LAN address
    // the public side cannot reach fails the send, and coturn then drops the allocation.
    "--denied-peer-ip=10.0.0.0-10.255.255.255", "--denied-peer-ip=172.16.0.0-172.31.255.255",
    "--denied-peer-ip=192.168.0.0-192.168.255.255", "--denied-peer-ip=100.64.0.0-100.127.255.255",
    `--allowed-peer-ip=${PUBLIC_RANGE}`,
    ...(process.env.DEBUG ? ["--verbose"] : []), "--log-file=stdout", `--pidfile=${join(dir, "turnserver.pid")}`, `--db=${join(dir, "turndb")}`,
  ];
  // stdbuf: coturn writes its log through stdio, fully buffered into a pipe otherwise.
  const [ip, ...pre] = nsPrefix(ns);
  const child = spawn(ip, [...pre, "stdbuf", "-oL", "turnserver", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const log = capture(child, "coturn");
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  const logs = () => log().slice(-4000);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitForStun(ns, PUBLIC_IP, COTURN_PORT),
      exited.then((e) => {
        throw new Error(`coturn exited at start (${JSON.stringify(e)})`);
      }),
    ]);
  } catch (e) {
    await stop();
    throw new Error(`${e.message}\n--- coturn log ---\n${logs()}`, { cause: e });
  }
  return { stop, logs };
}

/**
 * Polls host:port with a STUN binding request (coturn's `turnutils_stunclient`, from `ns`)
 * until it answers, for up to `ms`. A poll, because coturn logs no line for "UDP listener up".
 */
export async function waitForStun(ns, host, port, ms = 15_000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    // turnutils_stunclient waits forever for an answer: bound every attempt.
    const attempt = await run("ip", [...nsPrefix(ns).slice(1), "timeout", "1", "turnutils_stunclient", "-p", String(port), host])
      .then(({ stdout }) => ({ ok: /reflexive addr/.test(stdout), out: stdout }))
      .catch((e) => ({ ok: false, out: e.stderr || e.message }));
    if (attempt.ok) return;
    last = attempt.out;
  }
  throw new Error(`no STUN answer from ${host}:${port} within ${ms} ms; last: ${last}`);
}
