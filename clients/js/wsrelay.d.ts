// TypeScript declarations for wsrelay.js (the wsrelay client library).

/** The part of the WebSocket API the client uses (browsers, Node.js 20+, the 'ws' package). */
export interface WebSocketLike {
  /** Called with an event that has no fields the client reads. */
  onopen: ((event: any) => void) | null;
  /** Called with `{data}`: a string (or ArrayBuffer / typed array of UTF-8). */
  onmessage: ((event: any) => void) | null;
  /** Called with an event whose `message`, if any, becomes the error's. */
  onerror: ((event: any) => void) | null;
  /** Called with `{code, reason}`. */
  onclose: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: `new WebSocket(url)`. */
export interface WebSocketConstructorLike {
  new (url: string): WebSocketLike;
}

export interface WsRelayOptions {
  /** WebSocket implementation; default `globalThis.WebSocket` (the constructor throws if there is none). */
  WebSocket?: WebSocketConstructorLike;
  /** Per-command timeout in ms, counted from when the command is written to the socket; default 10000. */
  timeoutMs?: number;
  /** Reconnect automatically after the connection is lost; default true.
   * After a close 1012 ("service restart", a draining node): at once, after
   * 0..min(maxDelayMs, 1000) ms of jitter, not the backoff. */
  reconnect?: boolean;
  /** Backoff ceiling of the first reconnect attempt, in ms; default 500. */
  minDelayMs?: number;
  /** Largest backoff ceiling, in ms; default 30000. */
  maxDelayMs?: number;
  /** Commands held while not connected; beyond it they are rejected with "queue full"; default 1000. */
  maxQueue?: number;
  /** A JSON Web Token sent with `auth` first on every connection (PROTOCOL.md 7.1). */
  token?: string;
  /**
   * Called for a token on every connect and reconnect, and ~30 s before the current token's exp
   * to refresh the login (the node closes the connection 4401 "token expired" at exp + 30 s).
   * May be async; null, undefined or "" connects without auth this time. Takes precedence over
   * `token`.
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
}

export interface SubscribeOptions {
  /** Channel password; omitted or undefined: none (null is sent as null, which the server takes as none). */
  password?: string | null;
  /**
   * PROTOCOL.md 7.3: deliveries carry their offset, the client keeps the channel's epoch and
   * last offset, and after a reconnect the missed messages are replayed (or the "gap" event).
   */
  recover?: boolean;
  /** Resume from this position (implies recover), e.g. one saved by an earlier run. */
  since?: Position;
  /** PROTOCOL.md 7.4: "join" and "leave" events for logged-in users of this channel, on every node. */
  presenceEvents?: boolean;
}

/** Who is on a channel across the mesh (PROTOCOL.md 7.4). */
export interface PresenceResult {
  /** Every subscriber of every node that answered, anonymous ones included. */
  clients: number;
  /** The distinct logged-in users (token sub), sorted, at most 1000. */
  users: string[];
  /** True when a node holding the channel did not answer in time (it is left out). */
  partial: boolean;
}

/** A logged-in user's first subscription to a channel on any node opened (join) or its last closed (leave). */
export interface PresenceEvent {
  channel: string;
  user: string;
}

/** A place in a channel's history on one node. */
export interface Position {
  epoch: string;
  offset: number;
}

/** What subscribe() resolves to with recover or since. */
export interface SubscribeResult extends Position {
  /** With since: the missed messages follow (true), or cannot be replayed (false). */
  recovered?: boolean;
}

export interface HistoryResult extends Position {
  /** The newest kept messages, oldest first. */
  messages: { message: string; offset: number }[];
}

export interface OpenEvent {
  /**
   * Per recovering subscription restored with a position: true when the missed messages were
   * replayed, false when they could not be (a "gap" event was fired too). Empty on a first connect.
   */
  recovered: Record<string, boolean>;
}

export interface GapEvent {
  channel: string;
  /** The position the client had. */
  from: Position;
  /** The node's position now: deliveries continue from here. */
  to: Position;
}

export interface CloseEvent {
  code: number;
  reason: string;
}

export interface ReconnectingEvent {
  /** 1 for the first attempt after a loss, counting up while attempts fail. */
  attempt: number;
  /** The delay before this attempt, uniform in [0, min(maxDelayMs, minDelayMs * 2^(attempt-1))]. */
  delayMs: number;
}

export interface MessageEvent {
  channel: string;
  message: string;
  /** The sender's nonce; undefined when the sender gave none. */
  nonce: string | undefined;
  /** The message's offset, on a subscription with recover (7.3). */
  offset?: number;
}

export interface UnsubscribedEvent {
  channel: string;
  /** The server's reason, e.g. "channel reservation lost", or a failed restore's reason. */
  reason: string;
}

export interface AuthEvent {
  /** The token's sub. */
  user: string;
  /** The token's exp, seconds since the epoch. */
  expires: number;
  /** True for a refresh on an open connection, false for the auth a connection starts with. */
  refresh: boolean;
}

export interface AuthErrorEvent {
  /**
   * The server's reason ("invalid token", "token expired", or a close's "unauthorized" /
   * "token expired"), or the client's own: "getToken failed", "no token" (getToken gave no string).
   */
  reason: string;
  refresh: boolean;
  /** 4401 when the server closed the connection for authentication. */
  code?: number;
  /** What getToken threw. */
  error?: unknown;
}

export interface WsRelayEventMap {
  /** Connected and every subscription restored; queued commands have been written. */
  open: OpenEvent;
  /**
   * A connection that was open is gone: the socket's code and reason; 4408 "timeout" when the
   * client dropped it because a restore subscribe went unanswered; 1000 "closed" after close().
   */
  close: CloseEvent;
  /** A reconnect attempt is scheduled. */
  reconnecting: ReconnectingEvent;
  /** A delivery on a subscribed channel. */
  message: MessageEvent;
  /** The server removed a subscription, or it could not be restored; it is not restored again. */
  unsubscribed: UnsubscribedEvent;
  /** A socket error, an unreadable frame, or a response without nonce. */
  error: Error;
  /** The node accepted the token (on connect, on reconnect, on refresh). */
  auth: AuthEvent;
  /** Authentication failed, or the node closed the connection with 4401. A failed refresh keeps the login. */
  autherror: AuthErrorEvent;
  /** A recovering subscription was restored but the missed messages could not be replayed. */
  gap: GapEvent;
  /** A user joined a channel subscribed with presenceEvents (not sent for the client's own join). */
  join: PresenceEvent;
  /** A user's last subscription to the channel, on any node, closed. */
  leave: PresenceEvent;
}

export type WsRelayEvent = keyof WsRelayEventMap;

export type WsRelayListener<E extends WsRelayEvent> =
  WsRelayEventMap[E] extends void ? () => void : (event: WsRelayEventMap[E]) => void;

/** A rejected command. `reason` (also `message`) is the server's exact reason string or one of "timeout", "disconnected", "queue full", "closed". */
export class WsRelayError extends Error {
  constructor(reason: string, command: string);
  readonly name: "WsRelayError";
  readonly reason: string;
  /** The command that failed: "subscribe", "unsubscribe", "send", "list" (or "auth"). */
  readonly command: string;
}

export class WsRelay {
  /**
   * Starts connecting at once. Throws a TypeError if there is no WebSocket implementation or an
   * option is invalid, and whatever the WebSocket constructor throws (e.g. a malformed URL).
   */
  constructor(url: string | URL, options?: WsRelayOptions);

  /** The URL this client connects to. */
  readonly url: string;
  /** True while connected with every subscription restored. */
  readonly connected: boolean;
  /** The authenticated user (sub) of the current connection, or null. */
  readonly user: string | null;
  /** The current login's exp (seconds since the epoch), or null. */
  readonly expires: number | null;
  /** The channels the user holds (restored on reconnect). */
  readonly subscriptions: string[];

  /** Resolves to undefined, or with recover / since to the position (SubscribeResult). */
  subscribe(topic: string, options?: SubscribeOptions): Promise<void | SubscribeResult>;
  /** The position reached on a recovering subscription, or null. */
  position(topic: string): Position | null;
  /** The newest kept messages of a subscribed channel; limit defaults to (and is capped at) the node's size. */
  history(channel: string, limit?: number): Promise<HistoryResult>;
  /** Who is on a subscribed channel across the mesh. */
  presence(channel: string): Promise<PresenceResult>;
  unsubscribe(topic: string): Promise<void>;
  send(channel: string, message: string): Promise<void>;
  /** Every channel open anywhere on the network, sorted. */
  list(): Promise<string[]>;
  /**
   * Authenticates now with `token` (kept for later connections; default: the current `token`).
   * Rejects with the server's reason; a failure keeps the current login.
   */
  authenticate(token?: string): Promise<{ user: string; expires: number }>;
  /** Stops for good: no reconnect; pending, queued and later commands are rejected with "closed". */
  close(): void;

  on<E extends WsRelayEvent>(event: E, listener: WsRelayListener<E>): this;
  off<E extends WsRelayEvent>(event: E, listener: WsRelayListener<E>): this;
}

export default WsRelay;
