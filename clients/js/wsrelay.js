// wsrelay client library: browsers and Node.js 20+, no dependencies, no
// build step. The protocol is section 2 of PROTOCOL.md (WS /connect).
//
//   import { WsRelay } from "./wsrelay.js";
//   const relay = new WsRelay("ws://127.0.0.1:8080/connect");
//   relay.on("message", ({ channel, message }) => console.log(channel, message));
//   await relay.subscribe("lobby");
//   await relay.send("lobby", "hello");
//
// Every command carries a unique nonce and returns a promise settled by the
// response with that nonce. Errors are WsRelayError: `reason` (also the
// message) is the server's exact reason string, or one of the client's own:
// "timeout", "disconnected", "queue full", "closed".
//
// Authentication (PROTOCOL.md 7.1): with `token` or `getToken` (sync or
// async), every connection sends `auth` first, before the subscriptions
// are restored and the queue goes out; with `getToken` the login is
// refreshed ~30 s before the token's exp. Outcomes are the "auth" and
// "autherror" events.
//
// History and recovery (PROTOCOL.md 7.3): subscribe(topic, {recover: true})
// keeps the channel's epoch and the last offset received; after a reconnect
// the subscription is restored with `since`, and the node replays what was
// missed (then "open" says recovered: {channel: true}) or cannot (the
// "gap" event, and recovered: {channel: false}). history(channel, limit).
//
// Presence (PROTOCOL.md 7.4): presence(channel) resolves to {clients,
// users, partial}; subscribe(topic, {presenceEvents: true}) adds the
// "join" and "leave" events ({channel, user}) for logged-in users, kept
// across reconnects.

const EVENTS = ["open", "close", "reconnecting", "message", "unsubscribed", "error", "auth", "autherror", "gap",
  "join", "leave"];

// Refresh this long before exp (the node closes the connection at exp + 30 s).
const REFRESH_BEFORE_MS = 30000;
// Close code of an authentication failure (7.1): "unauthorized", "token expired".
const AUTH_CLOSE_CODE = 4401;

const DEFAULTS = {
  timeoutMs: 10000,
  reconnect: true,
  minDelayMs: 500,
  maxDelayMs: 30000,
  maxQueue: 1000,
};

// Late answers to timed-out subscribes are remembered this long (by count).
const MAX_LATE = 1024;

// Close 1012 ("service restart": the node is draining): reconnect now, to
// another node behind the same URL, after uniform 0..RESTART_JITTER_MS
// (at most maxDelayMs), so that the node's clients do not all arrive at once.
const RESTART_CODE = 1012;
const RESTART_JITTER_MS = 1000;

// setTimeout takes at most 2^31-1 ms; larger values fire at once.
const MAX_TIMER_MS = 2147483647;

function noop() {}

/** A rejected command. `reason` is the exact reason string. */
export class WsRelayError extends Error {
  constructor(reason, command) {
    super(reason);
    this.name = "WsRelayError";
    this.reason = reason;
    this.command = command;
  }
}

function randomPrefix() {
  const bytes = new Uint8Array(6);
  const c = globalThis.crypto;
  if (c && typeof c.getRandomValues === "function") {
    c.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function nonNegative(options, name) {
  const v = options[name] === undefined ? DEFAULTS[name] : options[name];
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
    throw new TypeError(`WsRelay: options.${name} must be a finite number >= 0`);
  }
  return v;
}

export class WsRelay {
  #url;
  #WebSocket;
  #timeoutMs;
  #reconnect;
  #minDelayMs;
  #maxDelayMs;
  #maxQueue;
  #token; // string, or undefined
  #getToken; // function, or undefined
  #user = null; // the current login's user (sub), or null
  #expires = null; // its exp, seconds since the epoch
  #refreshTimer = null;

  #ws = null; // the current socket, or null between attempts
  #opened = false; // the current socket has fired open
  #ready = false; // open and subscriptions restored: commands go out at once
  #restoring = 0; // restore subscribes still unanswered
  #attempt = 0; // consecutive connection attempts that failed
  #reconnectTimer = null;
  #dead = null; // null, or the reason every command now gets ("closed", "disconnected")

  #noncePrefix = randomPrefix();
  #nonceCounter = 0;
  #pending = new Map(); // nonce -> entry written and not yet answered
  #queue = []; // entries waiting for the connection, in call order
  // topic -> {password (undefined: none), recover, epoch, offset} the user
  // holds; epoch and offset: the position reached (recover only)
  #subs = new Map();
  #recovered = null; // topic -> bool of this connection's restore, for "open"
  #late = new Map(); // nonce -> topic of subscribes that timed out
  #listeners = new Map(EVENTS.map((e) => [e, new Set()]));

  /**
   * @param {string | URL} url  ws:// or wss:// URL of a node's /connect
   * @param {object} [options]
   */
  constructor(url, options = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("WsRelay: options must be an object");
    }
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") {
      throw new TypeError(
        "WsRelay: no WebSocket implementation: pass options.WebSocket " +
          "(e.g. the 'ws' package), or on Node.js 20 run with --experimental-websocket",
      );
    }
    this.#url = String(url);
    this.#WebSocket = WS;
    this.#timeoutMs = nonNegative(options, "timeoutMs");
    this.#minDelayMs = nonNegative(options, "minDelayMs");
    this.#maxDelayMs = nonNegative(options, "maxDelayMs");
    this.#maxQueue = nonNegative(options, "maxQueue");
    this.#reconnect = options.reconnect === undefined ? DEFAULTS.reconnect : !!options.reconnect;
    if (options.token !== undefined && typeof options.token !== "string") {
      throw new TypeError("WsRelay: options.token must be a string");
    }
    if (options.getToken !== undefined && typeof options.getToken !== "function") {
      throw new TypeError("WsRelay: options.getToken must be a function");
    }
    this.#token = options.token;
    this.#getToken = options.getToken;
    this.#connect(); // a synchronous failure (bad URL) throws from here
  }

  /** The URL this client connects to. */
  get url() {
    return this.#url;
  }

  /** The authenticated user (the token's sub) of this connection, or null. */
  get user() {
    return this.#user;
  }

  /** The current login's expiry (seconds since the epoch), or null. */
  get expires() {
    return this.#expires;
  }

  /** True while connected with every subscription restored. */
  get connected() {
    return this.#ready;
  }

  /** The channels the user holds (restored on reconnect), in subscribe order. */
  get subscriptions() {
    return [...this.#subs.keys()];
  }

  // ---------------------------------------------------------------- commands

  /**
   * Subscribes to `topic`, creating it (with `password`) if open nowhere.
   * With `recover: true` (7.3) deliveries carry their offset, the position
   * is kept, and it resolves to {epoch, offset}; with `since` ({epoch,
   * offset}, e.g. saved by an earlier run) the missed messages are
   * replayed and it resolves to {epoch, offset, recovered}. With
   * `presenceEvents: true` (7.4) the "join" and "leave" events come for
   * this channel.
   */
  subscribe(topic, options = {}) {
    const password = options == null ? undefined : options.password;
    const since = options == null ? undefined : options.since;
    const recover = !!(options && (options.recover || since));
    const presenceEvents = !!(options && options.presenceEvents);
    const data = password === undefined ? { topic } : { topic, password };
    if (presenceEvents) data.presence_events = true;
    if (since !== undefined) {
      if (since === null || typeof since !== "object" || typeof since.epoch !== "string" ||
          !Number.isSafeInteger(since.offset) || since.offset < 0) {
        throw new TypeError("WsRelay: options.since must be {epoch: string, offset: integer >= 0}");
      }
      data.since = { epoch: since.epoch, offset: since.offset };
    } else if (recover) {
      data.recover = true;
    }
    return this.#command("subscribe", data, {
      ok: (entry, resp) => {
        const sub = { password, recover, presenceEvents, epoch: null, offset: since ? since.offset : 0 };
        if (recover) this.#position(sub, resp);
        this.#subs.set(topic, sub);
        if (!recover) {
          entry.resolve();
          return;
        }
        const out = { epoch: sub.epoch, offset: typeof resp.offset === "number" ? resp.offset : sub.offset };
        if (typeof resp.recovered === "boolean") out.recovered = resp.recovered;
        entry.resolve(out);
      },
    });
  }

  /** The position reached on a recovering subscription: {epoch, offset}, or null. */
  position(topic) {
    const sub = this.#subs.get(topic);
    return sub && sub.recover && sub.epoch !== null ? { epoch: sub.epoch, offset: sub.offset } : null;
  }

  /**
   * The newest kept messages of a subscribed channel (7.3), oldest first:
   * resolves to {epoch, offset, messages: [{message, offset}]}. `limit`
   * defaults to (and is capped at) the node's [history] size.
   */
  history(channel, limit) {
    const data = limit === undefined ? { channel } : { channel, limit };
    return this.#command("history", data, {
      ok: (entry, resp) =>
        entry.resolve({
          epoch: resp.epoch,
          offset: resp.offset,
          messages: Array.isArray(resp.messages) ? resp.messages : [],
        }),
    });
  }

  /**
   * Who is on a subscribed channel across the mesh (7.4): resolves to
   * {clients, users, partial} - every subscriber of every node, the
   * logged-in users among them (sorted, at most 1000), and whether a node
   * holding the channel did not answer in time.
   */
  presence(channel) {
    return this.#command("presence", { channel }, {
      ok: (entry, resp) =>
        entry.resolve({
          clients: typeof resp.clients === "number" ? resp.clients : 0,
          users: Array.isArray(resp.users) ? resp.users : [],
          partial: resp.partial === true,
        }),
    });
  }

  // A (re)subscribe's answer: the epoch, and the last offset so far -
  // unless the missed messages follow (recovered): then each replayed one
  // moves the position, so a connection lost mid-replay resumes from there.
  #position(sub, resp) {
    if (typeof resp.epoch === "string") sub.epoch = resp.epoch;
    if (typeof resp.offset === "number" && resp.recovered !== true) sub.offset = resp.offset;
  }

  /**
   * Leaves `topic`. A channel the user held is dropped at once from the set
   * restored on reconnect; if it was lost with a connection meanwhile, the
   * server's "not subscribed" is taken as success.
   */
  unsubscribe(topic) {
    const held = this.#subs.delete(topic);
    if (held && !this.#dead && !this.#opened &&
        !this.#queue.some((e) => e.command === "subscribe" && e.data.topic === topic)) {
      // No connection: the subscription went with the last one and will not
      // be restored, so there is nothing to ask the server.
      return Promise.resolve();
    }
    return this.#command("unsubscribe", { topic }, {
      ok: (entry) => {
        this.#subs.delete(topic);
        entry.resolve();
      },
      fail: (entry, reason) => {
        if (held && reason === "not subscribed") {
          this.#subs.delete(topic);
          entry.resolve();
        } else {
          entry.reject(new WsRelayError(reason, "unsubscribe"));
        }
      },
    });
  }

  /** Sends `message` to every other subscriber of `channel`. */
  send(channel, message) {
    return this.#command("send", { channel, message });
  }

  /** Resolves to every channel open anywhere on the network, sorted. */
  list() {
    return this.#command("list", {}, {
      ok: (entry, data) => entry.resolve(Array.isArray(data.channels) ? data.channels : []),
    });
  }

  /**
   * Authenticates now with `token` (kept for every later connection, as the
   * `token` option; without it, the current one). Resolves to {user,
   * expires}; rejects with the server's reason. Also fires "auth" or
   * "autherror". A failure leaves the current login as it was.
   */
  authenticate(token) {
    if (token !== undefined) {
      if (typeof token !== "string") throw new TypeError("WsRelay: token must be a string");
      this.#token = token;
    }
    return this.#command("auth", { token: this.#token ?? "" }, {
      ok: (entry, data) => {
        this.#user = typeof data.user === "string" ? data.user : null;
        this.#expires = typeof data.expires === "number" ? data.expires : null;
        this.#scheduleRefresh(this.#ws);
        this.#emit("auth", { user: this.#user, expires: this.#expires, refresh: true });
        entry.resolve({ user: this.#user, expires: this.#expires });
      },
      fail: (entry, reason) => {
        this.#emit("autherror", { reason, refresh: true });
        entry.reject(new WsRelayError(reason, "auth"));
      },
    });
  }

  /**
   * Closes the connection for good: no reconnect, every pending or queued
   * command is rejected with "closed", later commands too.
   */
  close() {
    if (this.#dead === "closed") return;
    this.#dead = "closed";
    this.#clearLogin();
    if (this.#reconnectTimer !== null) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
    }
    const ws = this.#ws;
    const wasOpen = this.#opened;
    this.#ws = null;
    this.#opened = false;
    this.#ready = false;
    this.#restoring = 0;
    this.#late.clear();
    this.#rejectPending("closed");
    this.#rejectQueue("closed");
    if (ws) {
      this.#detach(ws);
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    if (wasOpen) this.#emit("close", { code: 1000, reason: "closed" });
  }

  // ------------------------------------------------------------------ events

  /**
   * Adds a listener. Events: open, close, reconnecting, message,
   * unsubscribed, error, auth ({user, expires, refresh}), autherror
   * ({reason, refresh, code?, error?}).
   */
  on(event, fn) {
    this.#listenersOf(event, fn).add(fn);
    return this;
  }

  /** Removes a listener added with on(). */
  off(event, fn) {
    this.#listenersOf(event, fn).delete(fn);
    return this;
  }

  #listenersOf(event, fn) {
    const set = this.#listeners.get(event);
    if (!set) throw new TypeError(`WsRelay: unknown event ${JSON.stringify(event)}`);
    if (typeof fn !== "function") throw new TypeError("WsRelay: listener must be a function");
    return set;
  }

  #emit(event, arg) {
    for (const fn of [...this.#listeners.get(event)]) {
      try {
        fn.call(this, arg);
      } catch (err) {
        // A throwing listener must not break the client: report it the way
        // browsers report a throwing event handler (an uncaught error).
        setTimeout(() => {
          throw err;
        }, 0);
      }
    }
  }

  // --------------------------------------------------------------- internals

  // hooks: { ok(entry, data), fail(entry, reason) }; defaults resolve / reject.
  #command(command, data, hooks = {}) {
    return new Promise((resolve, reject) => {
      if (this.#dead) {
        reject(new WsRelayError(this.#dead, command));
        return;
      }
      const entry = { command, data, resolve, reject, ok: hooks.ok, fail: hooks.fail };
      if (this.#ready) {
        this.#write(entry);
      } else if (this.#queue.length >= this.#maxQueue) {
        reject(new WsRelayError("queue full", command));
      } else {
        this.#queue.push(entry);
      }
    });
  }

  #nextNonce() {
    this.#nonceCounter += 1;
    return `${this.#noncePrefix}-${this.#nonceCounter.toString(36)}`;
  }

  // Writes one command on the open socket and starts its timeout.
  #write(entry) {
    const nonce = this.#nextNonce();
    let frame;
    try {
      frame = JSON.stringify({ command: entry.command, data: entry.data, nonce });
    } catch (err) {
      entry.reject(err); // not serialisable (a BigInt, a cycle): the caller's TypeError
      return;
    }
    entry.nonce = nonce;
    entry.timer = setTimeout(() => this.#timedOut(nonce), Math.min(this.#timeoutMs, MAX_TIMER_MS));
    this.#pending.set(nonce, entry);
    try {
      this.#ws.send(frame);
    } catch (err) {
      // The socket went away under us; its close event rejects the entry.
      this.#emit("error", err instanceof Error ? err : new Error(String(err)));
    }
  }

  #timedOut(nonce) {
    const entry = this.#pending.get(nonce);
    if (!entry) return;
    this.#pending.delete(nonce);
    if (entry.restore) {
      // The node does not answer: start over on a fresh connection.
      this.#lost(this.#ws, 4408, "timeout", true);
      return;
    }
    if (entry.command === "subscribe") {
      this.#late.set(nonce, entry.data.topic);
      if (this.#late.size > MAX_LATE) this.#late.delete(this.#late.keys().next().value);
    }
    entry.reject(new WsRelayError("timeout", entry.command));
  }

  #rejectPending(reason) {
    const entries = [...this.#pending.values()];
    this.#pending.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(new WsRelayError(reason, entry.command));
    }
  }

  #rejectQueue(reason) {
    const entries = this.#queue;
    this.#queue = [];
    for (const entry of entries) entry.reject(new WsRelayError(reason, entry.command));
  }

  #connect() {
    this.#reconnectTimer = null;
    const ws = new this.#WebSocket(this.#url);
    this.#ws = ws;
    this.#opened = false;
    ws.onopen = () => this.#onOpen(ws);
    ws.onmessage = (ev) => this.#onFrame(ws, ev.data);
    ws.onerror = (ev) => {
      if (this.#ws !== ws) return;
      const err = new Error((ev && ev.message) || "WebSocket error");
      err.event = ev;
      this.#emit("error", err);
      // A connection that never opened has failed: some implementations
      // (Node.js 20's undici) fire no close event after this error.
      if (this.#ws === ws && !this.#opened) this.#lost(ws, 1006, "", true);
    };
    ws.onclose = (ev) => this.#lost(ws, ev ? ev.code : 1006, ev && ev.reason ? ev.reason : "", false);
  }

  // Handlers are replaced by no-ops rather than removed: with the 'ws'
  // package an 'error' event without a listener would throw.
  #detach(ws) {
    ws.onopen = noop;
    ws.onmessage = noop;
    ws.onerror = noop;
    ws.onclose = noop;
  }

  #onOpen(ws) {
    if (this.#ws !== ws) return;
    this.#opened = true;
    this.#attempt = 0;
    if (this.#token === undefined && !this.#getToken) {
      this.#restore(ws);
      return;
    }
    // auth first: the restored subscriptions and the queue come after it,
    // whatever its outcome (a failure is the "autherror" event)
    this.#authenticate(ws, false).then(() => this.#restore(ws));
  }

  // Gets a token (getToken wins over token) and sends auth on @ws.
  // Resolves once answered, failed or abandoned; never rejects.
  async #authenticate(ws, refresh) {
    let token;
    try {
      token = this.#getToken ? await this.#getToken() : this.#token;
    } catch (err) {
      if (this.#ws === ws) this.#emit("autherror", { reason: "getToken failed", refresh, error: err });
      return;
    }
    if (this.#ws !== ws || !this.#opened) return;
    if (token === undefined || token === null || token === "") return; // anonymous, this time
    if (typeof token !== "string") {
      this.#emit("autherror", { reason: "no token", refresh });
      return;
    }
    const before = this.#expires;
    await new Promise((done) => {
      this.#write({
        command: "auth",
        data: { token },
        restore: !refresh, // a first auth that times out: reconnect
        resolve: done,
        reject: done,
        ok: (_entry, data) => {
          this.#user = typeof data.user === "string" ? data.user : null;
          this.#expires = typeof data.expires === "number" ? data.expires : null;
          // a refresh that did not move exp would refresh again at once
          if (!refresh || before === null || this.#expires > before) this.#scheduleRefresh(ws);
          this.#emit("auth", { user: this.#user, expires: this.#expires, refresh });
          done();
        },
        fail: (_entry, reason) => {
          // a failed refresh leaves the current login as it was (7.5.1)
          this.#emit("autherror", { reason, refresh });
          done();
        },
      });
    });
  }

  #scheduleRefresh(ws) {
    if (this.#refreshTimer !== null) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    if (!this.#getToken || this.#expires === null) return;
    const ms = Math.max(0, this.#expires * 1000 - REFRESH_BEFORE_MS - Date.now());
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = null;
      if (this.#ws === ws && this.#opened) this.#authenticate(ws, true);
    }, Math.min(ms, MAX_TIMER_MS));
  }

  #clearLogin() {
    if (this.#refreshTimer !== null) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#user = null;
    this.#expires = null;
  }

  #restore(ws) {
    if (this.#ws !== ws || !this.#opened) return;
    const subs = [...this.#subs];
    this.#restoring = subs.length;
    this.#recovered = {};
    if (subs.length === 0) {
      this.#becomeReady();
      return;
    }
    // Restore every subscription the user holds, with its password, before
    // anything queued goes out.
    for (const [topic, sub] of subs) {
      const { password } = sub;
      const data = password === undefined ? { topic } : { topic, password };
      // a recovering subscription resumes from where it was
      const since = sub.recover && sub.epoch !== null ? { epoch: sub.epoch, offset: sub.offset } : null;
      if (since) data.since = since;
      else if (sub.recover) data.recover = true;
      if (sub.presenceEvents) data.presence_events = true;
      this.#write({
        command: "subscribe",
        data,
        restore: true,
        resolve: noop,
        reject: noop,
        ok: (_entry, resp) => {
          if (sub.recover) {
            const recovered = since ? resp.recovered === true : false;
            this.#position(sub, resp);
            if (since) this.#recovered[topic] = recovered;
            if (since && !recovered) {
              // what was sent between since.offset and now is lost
              this.#emit("gap", { channel: topic, from: since, to: { epoch: sub.epoch, offset: sub.offset } });
            }
          }
          this.#restored(ws);
        },
        fail: (_entry, reason) => {
          // Not restored (e.g. the channel was recreated with another
          // password meanwhile): the user no longer holds it.
          if (this.#subs.has(topic)) {
            this.#subs.delete(topic);
            this.#emit("unsubscribed", { channel: topic, reason });
          }
          this.#restored(ws);
        },
      });
    }
  }

  #restored(ws) {
    if (this.#ws !== ws || this.#ready) return;
    this.#restoring -= 1;
    if (this.#restoring === 0) this.#becomeReady();
  }

  #becomeReady() {
    this.#ready = true;
    const queued = this.#queue;
    this.#queue = [];
    for (const entry of queued) this.#write(entry);
    const recovered = this.#recovered || {};
    this.#recovered = null;
    this.#emit("open", { recovered });
  }

  #onFrame(ws, raw) {
    if (this.#ws !== ws) return;
    let text = raw;
    if (typeof text !== "string") {
      if (raw instanceof ArrayBuffer || ArrayBuffer.isView(raw)) {
        text = new TextDecoder().decode(raw);
      } else {
        this.#emit("error", new Error("wsrelay: unexpected non-text frame"));
        return;
      }
    }
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.#emit("error", new Error(`wsrelay: frame is not JSON: ${text.slice(0, 200)}`));
      return;
    }
    if (msg === null || typeof msg !== "object") {
      this.#emit("error", new Error(`wsrelay: frame is not an object: ${text.slice(0, 200)}`));
      return;
    }
    const data = msg.data !== null && typeof msg.data === "object" ? msg.data : {};
    switch (msg.type) {
      case "response":
        this.#onResponse(msg.nonce, data, text);
        break;
      case "message": {
        const ev = { channel: data.channel, message: data.message, nonce: msg.nonce };
        if (typeof data.offset === "number") {
          ev.offset = data.offset;
          const sub = this.#subs.get(data.channel);
          if (sub && sub.recover) sub.offset = data.offset;
        }
        this.#emit("message", ev);
        break;
      }
      case "join":
      case "leave":
        this.#emit(msg.type, { channel: data.channel, user: data.user });
        break;
      case "unsubscribed":
        this.#subs.delete(data.channel);
        this.#emit("unsubscribed", { channel: data.channel, reason: data.reason });
        break;
      default:
        this.#emit("error", new Error(`wsrelay: unknown frame type: ${text.slice(0, 200)}`));
    }
  }

  #onResponse(nonce, data, text) {
    const entry = typeof nonce === "string" ? this.#pending.get(nonce) : undefined;
    if (!entry) {
      const topic = this.#late.get(nonce);
      if (topic !== undefined) {
        this.#late.delete(nonce);
        // A subscribe the user was told timed out went through after all:
        // undo it unless the user has subscribed again since.
        if (data.ok === true && !this.#subs.has(topic) && this.#ready) {
          this.#write({ command: "unsubscribe", data: { topic }, resolve: noop, reject: noop });
        }
      } else if (typeof nonce !== "string") {
        this.#emit("error", new Error(`wsrelay: response without nonce: ${text.slice(0, 200)}`));
      }
      // else: the answer to a command that already timed out
      return;
    }
    this.#pending.delete(nonce);
    clearTimeout(entry.timer);
    if (data.ok === true) {
      if (entry.ok) entry.ok(entry, data);
      else entry.resolve();
    } else {
      const reason = typeof data.reason === "string" ? data.reason : "unknown error";
      if (entry.fail) entry.fail(entry, reason);
      else entry.reject(new WsRelayError(reason, entry.command));
    }
  }

  // The socket closed (or is abandoned): reject what was written, keep what
  // is queued, and reconnect unless closed or reconnect is off.
  #lost(ws, code, reason, abandon) {
    if (this.#ws !== ws || ws === null) return;
    const wasOpen = this.#opened;
    this.#detach(ws);
    if (abandon) {
      try {
        if (code >= 3000) ws.close(code, reason);
        else ws.close();
      } catch {
        // already closing
      }
    }
    this.#ws = null;
    this.#opened = false;
    this.#ready = false;
    this.#restoring = 0;
    this.#late.clear();
    this.#clearLogin();
    this.#rejectPending("disconnected");
    if (wasOpen) this.#emit("close", { code, reason });
    if (code === AUTH_CLOSE_CODE) this.#emit("autherror", { reason, refresh: false, code });
    if (this.#dead) return; // close() was called by a listener
    if (!this.#reconnect) {
      this.#dead = "disconnected";
      this.#rejectQueue("disconnected");
      return;
    }
    this.#scheduleReconnect(wasOpen && code === RESTART_CODE);
  }

  #scheduleReconnect(restart = false) {
    // Full jitter: attempt n (from 1) waits uniform in
    // [0, min(maxDelayMs, minDelayMs * 2^(n-1))]; after a 1012 close of an
    // open connection, uniform in [0, min(maxDelayMs, RESTART_JITTER_MS)].
    this.#attempt += 1;
    const attempt = this.#attempt;
    const ceiling = restart
      ? Math.min(this.#maxDelayMs, RESTART_JITTER_MS)
      : Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** Math.min(attempt - 1, 52), MAX_TIMER_MS);
    const delayMs = Math.min(ceiling, Math.floor(Math.random() * (ceiling + 1)));
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#dead) return;
      try {
        this.#connect();
      } catch (err) {
        this.#ws = null;
        this.#emit("error", err instanceof Error ? err : new Error(String(err)));
        if (!this.#dead) this.#scheduleReconnect();
      }
    }, delayMs);
    this.#emit("reconnecting", { attempt, delayMs });
  }
}

export default WsRelay;
