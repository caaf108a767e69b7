// A stand-in for doorbell-hub, for testing the phone page on its own: serves the web/ files
// (as hub/build.rs picks them) with the hub's CSP, a scripted POST /api/pair, and a minimal WebSocket endpoint /ws
// (RFC 6455 text frames only; node 20 has no WebSocket server and we want no dependencies).
// The test script plays the hub's part: it sees what the page sends and sends what it wants.
//
// This is NOT the hub. The real end-to-end tests run against the real doorbell-hub.

import { createServer } from "node:http";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export const WEB_DIR = fileURLToPath(new URL("../../../web/", import.meta.url));

// Same header the hub sends (see the brief / hub's web module).
export const CSP =
  "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; style-src 'self'; script-src 'self'";

// Content types by extension, as hub/build.rs serves them.
const TYPES = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  webmanifest: "application/manifest+json",
  png: "image/png",
  svg: "image/svg+xml",
};
// Files in web/ that are not part of the app (hub/build.rs NOT_SERVED, tests).
const NOT_SERVED = /^(package(-lock)?\.json|tsconfig(\.sw)?\.json|.*\.test\..*)$/;

/** [file, content type] for a request path, or undefined: top-level web/ files only. */
function webFile(path) {
  const name = path === "/" ? "index.html" : path.slice(1);
  if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name) || NOT_SERVED.test(name)) return undefined;
  const type = TYPES[name.split(".").pop()];
  return type ? [name, type] : undefined;
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Starts the fake hub on 127.0.0.1 (random port).
 *
 * options.pair(body) -> {status, json}   handles POST /api/pair (default: 404)
 * options.tokens                          phone tokens accepted by hello (default ["good-token"])
 * options.welcome(token) -> object        welcome message for a good hello
 * options.extraRoutes { path: html }      extra pages served WITHOUT CSP (e.g. a fake door page)
 * options.events                          the history GET /api/events returns (default []; the
 *                                         returned `events` array can be changed later)
 * GET /api/quiet answers "quiet hours all off" and GET /api/replies "no quick replies" to a
 * known token.
 *
 * Returns { url, port, received, sockets, send(msg), waitFor(pred), dropAll(), close() }.
 */
export async function startFakeHub(options = {}) {
  const tokens = new Set(options.tokens ?? ["good-token"]);
  const received = []; // every parsed message from any page: {msg, conn}
  const waiters = [];
  const sockets = new Set();
  const pairRequests = [];
  const events = options.events ?? [];

  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (req.method === "POST" && path === "/api/pair") {
      let raw = "";
      for await (const chunk of req) raw += chunk;
      let body = null;
      try {
        body = JSON.parse(raw);
      } catch {}
      pairRequests.push(body);
      const { status, json } = options.pair ? await options.pair(body) : { status: 404, json: { error: "unknown code" } };
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(json));
      return;
    }
    if (req.method === "GET" && path === "/api/events") {
      const authorized = tokens.has((req.headers.authorization ?? "").replace(/^Bearer /, ""));
      res.writeHead(authorized ? 200 : 401, { "content-type": "application/json" });
      res.end(JSON.stringify(authorized ? { events } : { error: "unauthorized" }));
      return;
    }
    if (req.method === "GET" && path === "/api/replies") {
      // The ringing screen's quick-reply panel lists the door's clips: none here.
      const authorized = tokens.has((req.headers.authorization ?? "").replace(/^Bearer /, ""));
      res.writeHead(authorized ? 200 : 401, { "content-type": "application/json" });
      res.end(JSON.stringify(authorized ? { replies: [] } : { error: "unauthorized" }));
      return;
    }
    if (req.method === "GET" && path === "/api/quiet") {
      // The app's quiet-hours panel reads its settings on every connect: all off here.
      const authorized = tokens.has((req.headers.authorization ?? "").replace(/^Bearer /, ""));
      res.writeHead(authorized ? 200 : 401, { "content-type": "application/json" });
      const off = { utc_offset_min: 0, schedule: [], dnd_until_ms: null, quiet_now: false };
      res.end(JSON.stringify(authorized ? off : { error: "unauthorized" }));
      return;
    }
    if (options.extraRoutes?.[path] !== undefined) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(options.extraRoutes[path]);
      return;
    }
    const file = webFile(path);
    const body = req.method === "GET" && file ? await readFile(WEB_DIR + file[0]).catch(() => null) : null;
    if (!file || !body) {
      res.writeHead(404, { "content-type": "text/plain", "content-security-policy": CSP });
      res.end("not found");
      return;
    }
    res.writeHead(200, {
      "content-type": file[1],
      "content-security-policy": CSP,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    res.end(body);
  });

  server.on("upgrade", (req, socket) => {
    const path = new URL(req.url, "http://x").pathname;
    const key = req.headers["sec-websocket-key"];
    if (path !== "/ws" || !key) {
      socket.end("HTTP/1.1 404 Not Found\r\n\r\n");
      return;
    }
    const accept = createHash("sha1").update(key + WS_GUID).digest("base64");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    socket.setNoDelay(true);
    const conn = { socket, authed: false, token: null };
    sockets.add(conn);
    let buf = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const frame = parseFrame(buf);
        if (!frame) break;
        buf = buf.subarray(frame.length);
        if (frame.opcode === 0x8) {
          closeConn(conn);
          return;
        }
        if (frame.opcode === 0x9) {
          socket.write(encodeFrame(0xa, frame.payload));
          continue;
        }
        if (frame.opcode !== 0x1) continue;
        let msg;
        try {
          msg = JSON.parse(frame.payload.toString("utf8"));
        } catch {
          continue;
        }
        onMessage(conn, msg);
      }
    });
    socket.on("close", () => sockets.delete(conn));
    socket.on("error", () => sockets.delete(conn));
  });

  function onMessage(conn, msg) {
    if (msg.type === "hello" && !conn.authed) {
      if (tokens.has(msg.token)) {
        conn.authed = true;
        conn.token = msg.token;
        sendTo(conn, options.welcome ? options.welcome(msg.token) : defaultWelcome());
      } else {
        sendTo(conn, { type: "error", code: "unauthorized", message: "unknown phone token" });
        closeConn(conn);
      }
    }
    received.push({ msg, conn });
    for (const w of [...waiters]) {
      if (w.pred(msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(msg);
      }
    }
  }

  function sendTo(conn, msg) {
    if (!conn.socket.destroyed) conn.socket.write(encodeFrame(0x1, Buffer.from(JSON.stringify(msg))));
  }

  function closeConn(conn) {
    if (!conn.socket.destroyed) {
      conn.socket.write(encodeFrame(0x8, Buffer.from([0x03, 0xe8])));
      conn.socket.end();
    }
    sockets.delete(conn);
  }

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    pairRequests,
    tokens,
    events,
    get sockets() {
      return sockets;
    },
    /** Sends a hub->phone message to every authenticated page. */
    send(msg) {
      for (const c of sockets) if (c.authed) sendTo(c, msg);
    },
    /** Resolves with the first message (already received or future) matching pred. */
    waitFor(pred, timeout = 10_000) {
      const p = typeof pred === "string" ? (m) => m.type === pred : pred;
      const seen = received.find((r) => p(r.msg) && !r.consumed);
      if (seen) {
        seen.consumed = true;
        return Promise.resolve(seen.msg);
      }
      return new Promise((resolve, reject) => {
        const w = {
          pred: p,
          resolve: (m) => {
            const r = received.find((x) => x.msg === m);
            if (r) r.consumed = true;
            resolve(m);
          },
          timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new Error(`fake hub: no matching message from the page within ${timeout} ms`));
          }, timeout),
        };
        waiters.push(w);
      });
    },
    /** Cuts every WebSocket without a close frame (as a crashed hub would). */
    dropAll() {
      for (const c of sockets) c.socket.destroy();
      sockets.clear();
    },
    async close() {
      for (const c of sockets) c.socket.destroy();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export function defaultWelcome() {
  return {
    type: "welcome",
    protocol_version: 1,
    phone_id: "p-test",
    doors: [
      { door_id: "d-front", name: "Front door", online: true },
      { door_id: "d-garden", name: "Garden gate", online: false },
    ],
    ice_servers: [],
  };
}

function parseFrame(buf) {
  if (buf.length < 2) return null;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    off = 10;
  }
  const maskOff = off;
  if (masked) off += 4;
  if (buf.length < off + len) return null;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i % 4)];
  return { opcode, payload, length: off + len };
}

function encodeFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([0x80 | opcode, len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}
