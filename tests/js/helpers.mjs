// Helpers for the JS client tests: real wsrelay processes, a scriptable
// fake WebSocket server, a recording/gating WebSocket wrapper, and waits
// with deadlines (no test synchronises with sleeps).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import http from "node:http";
import crypto from "node:crypto";
import { afterEach } from "node:test";
import assert from "node:assert/strict";

import { WsRelay } from "../../clients/js/wsrelay.js";

export const BIN = process.env.WSRELAY_BIN || "/work/main/build/wsrelay";
export const DEADLINE = 10000; // one expected event

const READY_RE = /listening on http:\/\/127\.0\.0\.1:(\d+)/;

/**
 * What one test file must undo after each test: deferred functions run
 * newest first; relays made here are closed.
 */
export class Scope {
  constructor() {
    this.fns = [];
    afterEach(async () => {
      const fns = this.fns.reverse();
      this.fns = [];
      for (const fn of fns) await fn();
    });
  }
  defer(fn) {
    this.fns.push(fn);
  }
  /** Forgets the newest deferred function (the test undid it itself). */
  drop() {
    this.fns.pop();
  }
  relay(url, options) {
    const r = new WsRelay(url, options);
    this.defer(() => r.close());
    return r;
  }
}

/** The reason a command was rejected with (fails if it succeeded). */
export async function reason(promise) {
  const res = await withDeadline(settle(promise), "a command to settle");
  assert.equal(res.ok, false, "expected a rejection");
  return res.error.reason;
}

/** Rejects after `ms` with "timed out waiting for WHAT". */
export function withDeadline(promise, what, ms = DEADLINE) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves on the next macrotask turn (lets already-settled promises run). */
export function tick() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Settles to {ok, value|error} without throwing. */
export function settle(promise) {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
}

// ---------------------------------------------------------------- events

/**
 * Records every event of a WsRelay. `next(event, pred)` returns the first
 * recorded, not yet consumed event that matches, waiting for it with a
 * deadline if none is there yet.
 */
export class EventLog {
  constructor(relay) {
    this.items = []; // {event, arg, used}
    this.waiters = [];
    for (const event of ["open", "close", "reconnecting", "message", "unsubscribed", "error", "auth", "autherror", "gap",
      "join", "leave"]) {
      relay.on(event, (arg) => this.#push(event, arg));
    }
  }

  #push(event, arg) {
    const item = { event, arg, used: false };
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (!item.used && w.event === event && w.pred(arg)) {
        item.used = true;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(arg);
      }
    }
  }

  all(event) {
    return this.items.filter((i) => i.event === event).map((i) => i.arg);
  }

  next(event, pred = () => true, ms = DEADLINE) {
    const item = this.items.find((i) => !i.used && i.event === event && pred(i.arg));
    if (item) {
      item.used = true;
      return Promise.resolve(item.arg);
    }
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { event, pred, resolve };
      this.waiters.push(waiter);
    });
    return withDeadline(p, `event ${event}`, ms).finally(() => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  /** The next "message" event on `channel` (with `message`, if given). */
  message(channel, message) {
    return this.next("message", (m) => m.channel === channel && (message === undefined || m.message === message));
  }
}

// ---------------------------------------------------------- wsrelay nodes

/** A real wsrelay process; `restart()` starts it again on the same port. */
export class Node {
  constructor(dir, limits, toml) {
    this.dir = dir;
    this.limits = limits;
    this.toml = toml || "";
    this.port = 0;
    this.proc = null;
    this.stderr = "";
  }

  /** `toml`: more config text, appended (e.g. an [auth] section). */
  static async start({ limits, toml } = {}) {
    const dir = mkdtempSync(path.join(tmpdir(), "wsrelay-js-"));
    const node = new Node(dir, limits, toml);
    await node.#spawn(0);
    return node;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/connect`;
  }

  async #spawn(port) {
    let toml = `[node]\nname = "t"\nlisten = "127.0.0.1:${port}"\n`;
    if (this.limits) {
      toml += "[limits]\n";
      for (const [k, v] of Object.entries(this.limits)) toml += `${k} = ${v}\n`;
    }
    toml += this.toml;
    const config = path.join(this.dir, "node.toml");
    writeFileSync(config, toml);
    const proc = spawn(BIN, ["-c", config], { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    const ready = new Promise((resolve, reject) => {
      let buf = "";
      proc.stderr.setEncoding("utf8");
      proc.stderr.on("data", (chunk) => {
        this.stderr += chunk;
        buf += chunk;
        const m = READY_RE.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      proc.once("error", reject);
      proc.once("exit", (code, signal) =>
        reject(new Error(`wsrelay exited (${code ?? signal}) before listening:\n${this.stderr}`)),
      );
    });
    this.port = await withDeadline(ready, `wsrelay to listen (${BIN})`);
  }

  /** SIGSTOP: the process stays, its sockets accept bytes, nothing answers. */
  pause() {
    this.proc.kill("SIGSTOP");
  }

  resume() {
    this.proc.kill("SIGCONT");
  }

  /** SIGKILL (a crash) and wait for the exit. */
  async crash() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGKILL");
    await withDeadline(this.exited, "wsrelay to die");
  }

  async restart() {
    await this.crash();
    await this.#spawn(this.port);
  }

  /** Kills the process (if running) and removes its directory. */
  async dispose() {
    await this.crash();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------- a fake WebSocket server

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** One server-side connection of FakeServer: reads masked client frames, writes text frames. */
export class FakeConn {
  constructor(socket, server) {
    this.socket = socket;
    this.server = server;
    this.frames = []; // parsed JSON commands, in arrival order
    this.waiters = [];
    this.closed = new Promise((resolve) => socket.once("close", resolve));
    this.buf = Buffer.alloc(0);
    socket.on("data", (chunk) => this.#onData(chunk));
    socket.on("error", () => {});
  }

  #onData(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const opcode = b[0] & 0x0f;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const need = off + (masked ? 4 : 0) + len;
      if (b.length < need) return;
      const mask = masked ? b.subarray(off, off + 4) : null;
      const payload = Buffer.from(b.subarray(need - len, need));
      if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      this.buf = b.subarray(need);
      if (opcode === 0x1) this.#onText(payload.toString("utf8"));
      else if (opcode === 0x8) {
        this.#write(0x8, payload.subarray(0, 2));
        this.socket.end();
      } else if (opcode === 0x9) this.#write(0xa, payload);
    }
  }

  #onText(text) {
    const frame = JSON.parse(text);
    this.frames.push(frame);
    for (const w of [...this.waiters]) {
      if (w.pred(frame)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(frame);
      }
    }
    if (this.server.respond) this.server.respond(this, frame);
  }

  #write(opcode, payload) {
    let header;
    if (payload.length < 126) {
      header = Buffer.from([0x80 | opcode, payload.length]);
    } else {
      header = Buffer.alloc(4);
      header[0] = 0x80 | opcode;
      header[1] = 126;
      header.writeUInt16BE(payload.length, 2);
    }
    if (!this.socket.destroyed) this.socket.write(Buffer.concat([header, payload]));
  }

  sendJson(obj) {
    this.#write(0x1, Buffer.from(JSON.stringify(obj), "utf8"));
  }

  /** Answers `frame` (a command received) with `data` (default ok). */
  answer(frame, data = { ok: true }) {
    this.sendJson({ type: "response", data, nonce: frame.nonce });
  }

  /** The first received frame matching `pred` (waits with a deadline). */
  frame(pred, what = "a frame") {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return withDeadline(
      new Promise((resolve) => this.waiters.push({ pred, resolve })),
      what,
    );
  }

  /** Sends a close frame with `code` and `reason` (the client answers). */
  closeWith(code, reason = "") {
    const r = Buffer.from(reason, "utf8");
    const payload = Buffer.alloc(2 + r.length);
    payload.writeUInt16BE(code, 0);
    r.copy(payload, 2);
    this.#write(0x8, payload);
  }

  /** Drops the TCP connection without a close frame. */
  drop() {
    this.socket.destroy();
  }
}

/**
 * A WebSocket server that accepts any upgrade on 127.0.0.1. `respond(conn,
 * frame)`, when set, is called for every command received (null: silent).
 */
export class FakeServer {
  constructor() {
    this.conns = [];
    this.respond = null;
    this.connWaiters = [];
    this.http = http.createServer((req, res) => {
      res.writeHead(404);
      res.end();
    });
    this.refuse = false; // true: upgrades are cut off (the client keeps retrying)
    this.http.on("upgrade", (req, socket) => {
      if (this.refuse) {
        socket.destroy();
        return;
      }
      const accept = crypto
        .createHash("sha1")
        .update(req.headers["sec-websocket-key"] + WS_GUID)
        .digest("base64");
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
      const conn = new FakeConn(socket, this);
      this.conns.push(conn);
      for (const w of this.connWaiters.splice(0)) w();
    });
  }

  static async start() {
    const s = new FakeServer();
    await new Promise((resolve) => s.http.listen(0, "127.0.0.1", resolve));
    s.port = s.http.address().port;
    return s;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/connect`;
  }

  /** The n-th connection (from 0), waiting for it with a deadline. */
  async conn(n) {
    while (this.conns.length <= n) {
      await withDeadline(new Promise((resolve) => this.connWaiters.push(resolve)), `connection #${n}`);
    }
    return this.conns[n];
  }

  async close() {
    for (const c of this.conns) c.socket.destroy();
    await new Promise((resolve) => this.http.close(resolve));
  }
}

/** A respond() for FakeServer that answers every command ok (list: no channels). */
export function answerOk(conn, frame) {
  conn.answer(frame, frame.command === "list" ? { ok: true, channels: [] } : { ok: true });
}

// ------------------------------------- a recording, gateable WebSocket

/**
 * Wraps the global WebSocket: `sent` records every frame written (parsed),
 * `hold()` makes new connections wait until `release()`, `drop()` closes
 * the newest connection as a network loss would look to the client (its
 * close event fires; the client reconnects).
 */
export function tapWebSocket() {
  const tap = { sent: [], sockets: 0 };
  let gate = Promise.resolve();
  let open = null;
  tap.hold = () => {
    if (!open) gate = new Promise((resolve) => (open = resolve));
  };
  tap.release = () => {
    if (open) open();
    open = null;
  };
  tap.drop = () => {
    if (tap.current && tap.current.ws) tap.current.ws.close(4000, "dropped by the test");
  };
  tap.WebSocket = class TapWebSocket {
    constructor(url) {
      tap.current = this;
      this.readyState = 0;
      this.onopen = this.onmessage = this.onerror = this.onclose = null;
      this.ws = null;
      this.abandoned = false;
      tap.sockets += 1;
      gate.then(() => {
        if (this.abandoned) return;
        const ws = new globalThis.WebSocket(url);
        this.ws = ws;
        ws.onopen = (e) => {
          this.readyState = 1;
          this.onopen?.(e);
        };
        ws.onmessage = (e) => this.onmessage?.(e);
        ws.onerror = (e) => this.onerror?.(e);
        ws.onclose = (e) => {
          this.readyState = 3;
          this.onclose?.(e);
        };
      });
    }

    send(data) {
      tap.sent.push(JSON.parse(data));
      this.ws.send(data);
    }

    close(code, reason) {
      this.abandoned = true;
      this.readyState = 2;
      if (this.ws) this.ws.close(code, reason);
    }
  };
  return tap;
}
