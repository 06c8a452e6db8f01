/**
 * A framework-free client for the sensor-gateway's streams (ES module, no build step).
 *
 * - Connects to `/ws/alerts`, `/ws/sensors`, or `/ws` with `channels`.
 * - Reconnects on the seed's schedule (3, 6, 9, 12, 15, 15... s for 10 attempts) with
 *   random jitter, so that a room full of screens does not come back in lockstep.
 * - Remembers the last `seq` of each stream and resumes with `?since=` (or the
 *   subscribe action's `since` on `/ws`), so nothing is missed across a reconnect.
 * - After the last attempt, polls the REST fallback (`/api/alerts/summary`,
 *   `/api/sensors/latest`: ETag and long polls) and hands the app the same message
 *   shapes, while it keeps probing the WebSocket; it switches back when one opens.
 * - A token travels as the subprotocol `bearer.<token>` (and as `Authorization`
 *   on polls), never in a URL.
 *
 * @example
 * import { GatewayClient } from "/static/gateway-client.js";
 * const client = new GatewayClient({ url: "/ws/sensors" });
 * client.onMessage((message) => console.log(message.type, message.data));
 * client.connect();
 *
 * @module gateway-client
 */

import { DEFAULT_POLL_WAIT, POLL_ENDPOINTS, RestPoller } from "./rest-poller.js";

export { DEFAULT_POLL_WAIT, POLL_ENDPOINTS, RestPoller };
export const SUBPROTOCOL = "gateway.v1";
export const DEFAULT_RECONNECT_INTERVAL = 3000;
export const DEFAULT_MAX_RECONNECT_ATTEMPTS = 10;
/** The backoff grows by one interval per attempt up to this many intervals (15 s). */
export const MAX_BACKOFF_STEPS = 5;
export const DEFAULT_JITTER = 0.2;
export const DEFAULT_CONNECT_TIMEOUT = 10000;

/**
 * What {@link GatewayClient#status} can be.
 * @readonly
 * @enum {string}
 */
export const Status = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  POLLING: "polling",
  OFFLINE: "offline",
  CLOSED: "closed",
});

/** Messages that carry a stream's news, and with it a seq that grows by one. */
const NEWS = new Set(["update", "dismissed", "sensor_update"]);

const DEFAULT_STREAM = "default";

/**
 * The wait before reconnect attempt `attempt` (1-based): `interval * min(attempt, 5)`,
 * spread by ±`jitter` at random.
 *
 * @param {number} attempt 1 for the first retry
 * @param {number} interval the base interval in ms (3000 in the seed)
 * @param {{jitter?: number, random?: () => number}} [options]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, interval, { jitter = DEFAULT_JITTER, random = Math.random } = {}) {
  const steps = Math.min(Math.max(attempt, 1), MAX_BACKOFF_STEPS);
  const spread = 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(interval * steps * spread));
}

/**
 * The subprotocols to offer: always `gateway.v1` first (the server answers with it),
 * then `bearer.<token>` when there is a token.
 *
 * @param {string} [token]
 * @returns {string[]}
 */
export function subprotocols(token) {
  return token ? [SUBPROTOCOL, `bearer.${token}`] : [SUBPROTOCOL];
}

/**
 * An absolute `ws:`/`wss:` URL from a path (`/ws/alerts`), an http(s) URL or a ws(s) URL.
 *
 * @param {string | URL} url
 * @param {string} [base] defaults to the page's address
 * @returns {URL}
 */
export function socketUrl(url, base = globalThis.location?.href) {
  const resolved = new URL(url, base);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved;
}

/** The stream a single-stream URL carries (`/ws/alerts` -> `alerts`), or null. */
function streamOfPath(url) {
  const last = url.pathname.replace(/\/+$/, "").split("/").pop();
  return Object.hasOwn(POLL_ENDPOINTS, last) ? last : null;
}

/**
 * Where the REST API lives for a socket URL: the same host and path prefix
 * (`ws://h/gw/ws/sensors` -> `http://h/gw/`), so a gateway behind a proxy path works.
 */
export function apiBase(url) {
  const base = new URL(url);
  base.protocol = base.protocol === "wss:" ? "https:" : "http:";
  base.pathname = base.pathname.replace(/ws(\/[^/]*)?\/?$/, "");
  base.search = "";
  base.hash = "";
  return base.href;
}

/**
 * The query a relay needs on every poll: `?reservoir=` of the socket URL (which
 * {@link apiBase} leaves out), as an object of search parameters.
 */
export function pollQuery(url) {
  const reservoir = new URL(url).searchParams.get("reservoir");
  return reservoir ? { reservoir } : {};
}

/**
 * The stream a message's `channel` counts its seq under: the channel the client asked
 * for. A relay answers a short name (`alerts`, with `?reservoir=`) as `alerts:<id>`;
 * its seq is kept under `alerts`, so the resubscribe after a reconnect resumes.
 *
 * @param {string} channel the message's
 * @param {string[] | null} asked the client's channels
 */
export function streamOfChannel(channel, asked) {
  if (!asked || asked.includes(channel)) return channel;
  const short = channel.split(":")[0];
  return asked.includes(short) ? short : channel;
}

/**
 * @typedef {object} GatewayClientOptions
 * @property {string | URL} url `/ws/alerts`, `/ws/sensors` or `/ws`; relative to the page
 * @property {string} [token] a JWT; sent as the subprotocol `bearer.<token>`
 * @property {string[]} [channels] on `/ws`: the channels to subscribe to (`alerts`, `sensors`)
 * @property {number} [reconnectInterval=3000] ms; attempt n waits `interval * min(n, 5)`
 * @property {number} [maxReconnectAttempts=10] then poll, and probe the WebSocket
 * @property {number} [jitter=0.2] ± fraction of randomness on every wait
 * @property {number} [probeInterval] ms between WebSocket probes while polling
 *   (default: the longest backoff, `5 * reconnectInterval`, with jitter)
 * @property {boolean} [poll=true] fall back to polling after the last attempt
 * @property {number} [pollWait=25] s a long poll may wait for news
 * @property {number} [connectTimeout=10000] ms a connection may take to open before it
 *   counts as a failed attempt (a dropped SYN would otherwise hold up the schedule)
 * @property {number} [idleTimeout=0] ms without any message before the socket is deemed
 *   dead and replaced (0: off). Set it above the server's heartbeat interval.
 * @property {boolean} [logging=true] the seed's `[WebSocket] ...` lines in the console
 *   (`Connected`, `Message received: <type>`, `Disconnected`, `Reconnecting in Ns`)
 * @property {boolean} [quiet=false] the same as `logging: false`
 * @property {(message: object) => void} [onMessage]
 * @property {(error: GatewayError) => void} [onError]
 * @property {(status: StatusChange) => void} [onStatus]
 * @property {typeof WebSocket} [WebSocket] for tests
 * @property {typeof fetch} [fetch] for tests
 */

/**
 * @typedef {object} GatewayError
 * @property {"socket"|"message"|"http"|"auth"|"listener"} kind
 * @property {string} detail
 * @property {number} [code] a WebSocket close code
 * @property {number} [status] an HTTP status
 * @property {unknown} [error]
 */

/**
 * @typedef {object} StatusChange
 * @property {Status} status
 * @property {number} reconnectAttempts
 */

/** One WebSocket connection with its reconnects, and the polling fallback behind it. */
export class GatewayClient {
  /** @param {GatewayClientOptions} options */
  constructor(options) {
    const {
      url, token = "", channels = null, reconnectInterval = DEFAULT_RECONNECT_INTERVAL,
      maxReconnectAttempts = DEFAULT_MAX_RECONNECT_ATTEMPTS, jitter = DEFAULT_JITTER,
      probeInterval = null, poll = true, pollWait = DEFAULT_POLL_WAIT, idleTimeout = 0,
      connectTimeout = DEFAULT_CONNECT_TIMEOUT, logging = true, quiet = false,
    } = options;
    /** The console lines, as the seed's client writes them (and the server's log). */
    this.logging = logging && !quiet;
    this.url = socketUrl(url);
    this.token = token;
    this.channels = channels ? [...channels] : null;
    this.reconnectInterval = reconnectInterval;
    this.maxReconnectAttempts = maxReconnectAttempts;
    this.jitter = jitter;
    this.probeInterval = probeInterval;
    this.pollWait = pollWait;
    this.idleTimeout = idleTimeout;
    this.connectTimeout = connectTimeout;
    /** Reconnect attempts since the last open connection (the seed's counter). */
    this.reconnectAttempts = 0;
    /** @type {Status} */
    this.status = Status.IDLE;
    /** The last seq handled, per stream (`alerts`, `sensors`). */
    this.lastSeq = {};
    this._stream = this.channels ? null : streamOfPath(this.url);
    this._polls = poll ? this._streams().filter((s) => POLL_ENDPOINTS[s]) : [];
    this._WebSocket = options.WebSocket ?? null; // null: the page's, looked up at each attempt
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this._listeners = { message: new Set(), error: new Set(), status: new Set() };
    this._timers = new Map();
    this._socket = null;
    this._poller = null; // a RestPoller while polling
    this._stopped = true;
    if (options.onMessage) this.onMessage(options.onMessage);
    if (options.onError) this.onError(options.onError);
    if (options.onStatus) this.onStatus(options.onStatus);
  }

  /** True while a WebSocket is open. */
  get isConnected() {
    return this._socket?.readyState === 1 && this.status === Status.CONNECTED;
  }

  /** True while the REST fallback is in use. */
  get isPolling() {
    return this._poller !== null;
  }

  /**
   * Open the connection (and keep it open until {@link GatewayClient#close}).
   * @returns {this}
   */
  connect() {
    if (!this._stopped) return this;
    this._stopped = false;
    this._setStatus(Status.CONNECTING);
    this._open();
    return this;
  }

  /** Close the socket, stop polling, clear every timer. The client can connect again. */
  close() {
    this._stopped = true;
    for (const timer of this._timers.values()) clearTimeout(timer);
    this._timers.clear();
    this._stopPolling();
    this._dropSocket(1000, "client closed");
    this.reconnectAttempts = 0;
    this._setStatus(Status.CLOSED);
  }

  /**
   * Send a message (an object is sent as JSON). Only over an open WebSocket.
   * @param {object | string} message
   * @returns {boolean} whether it went out
   */
  send(message) {
    if (!this.isConnected) return false;
    this._socket.send(typeof message === "string" ? message : JSON.stringify(message));
    return true;
  }

  /** Ask for a `pong`. @returns {boolean} whether it went out */
  ping() {
    return this.send({ action: "ping" });
  }

  /**
   * Ask for a `refresh` (the current counts or readings).
   * @param {string} [channel] on `/ws`
   * @returns {boolean}
   */
  refresh(channel) {
    return this.send(channel ? { action: "refresh", channel } : { action: "refresh" });
  }

  /**
   * Follow one more channel on `/ws` (now if connected, and after every reconnect).
   * @param {string} channel e.g. `sensors:EMBALSE_02`
   */
  subscribe(channel) {
    if (!this.channels || this.channels.includes(channel)) return;
    this.channels.push(channel);
    this.send({ action: "subscribe", channel });
  }

  /**
   * Stop following a channel on `/ws`.
   * @param {string} channel
   */
  unsubscribe(channel) {
    if (!this.channels?.includes(channel)) return;
    this.channels = this.channels.filter((c) => c !== channel);
    this.send({ action: "unsubscribe", channel });
  }

  /**
   * Call `listener` with every message, parsed (polls give the same shapes).
   * @param {(message: object) => void} listener
   * @returns {() => void} removes the listener
   */
  onMessage(listener) {
    return this._listen("message", listener);
  }

  /**
   * @param {(error: GatewayError) => void} listener
   * @returns {() => void} removes the listener
   */
  onError(listener) {
    return this._listen("error", listener);
  }

  /**
   * @param {(change: StatusChange) => void} listener
   * @returns {() => void} removes the listener
   */
  onStatus(listener) {
    return this._listen("status", listener);
  }

  // the WebSocket ---------------------------------------------------------------------

  _streams() {
    return this.channels ?? [this._stream ?? DEFAULT_STREAM];
  }

  _connectUrl() {
    const url = new URL(this.url);
    const since = this._stream ? this.lastSeq[this._stream] : undefined;
    if (since !== undefined) url.searchParams.set("since", String(since));
    return url.href;
  }

  _open() {
    this._clearTimer("retry");
    let socket;
    try {
      const Socket = this._WebSocket ?? globalThis.WebSocket;
      socket = new Socket(this._connectUrl(), subprotocols(this.token));
    } catch (error) {
      this._report({ kind: "socket", detail: `cannot open a WebSocket: ${error}`, error });
      this._later("retry", 0, () => this._socketGone());
      return;
    }
    this._socket = socket;
    socket.onopen = () => this._opened(socket);
    socket.onmessage = (event) => this._frame(socket, event);
    socket.onclose = (event) => this._closed(socket, event);
    this._later("opening", this.connectTimeout, () => {
      this._report({ kind: "socket", detail: `not open after ${this.connectTimeout} ms` });
      this._dropSocket(4000, "connect timeout");
      this._socketGone();
    });
  }

  _opened(socket) {
    if (socket !== this._socket) return;
    this._clearTimer("opening");
    this.reconnectAttempts = 0;
    this._stopPolling();
    this._clearTimer("probe");
    this._setStatus(Status.CONNECTED);
    this._log(`Connected: ${this.url}`);
    for (const channel of this.channels ?? []) {
      const since = this.lastSeq[channel];
      this.send(since === undefined ? { action: "subscribe", channel } : { action: "subscribe", channel, since });
    }
    this._armIdle();
  }

  _frame(socket, event) {
    if (socket !== this._socket) return;
    this._armIdle();
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      this._report({ kind: "message", detail: "a frame that is not JSON", error });
      return;
    }
    this._log(`Message received: ${message?.type}`);
    this._accept(message);
  }

  _closed(socket, event) {
    if (socket !== this._socket) return;
    this._socket = null;
    this._clearTimer("idle");
    this._clearTimer("opening");
    if (this._stopped) return;
    this._log(`Disconnected: ${event.code}${event.reason ? ` ${event.reason}` : ""}`);
    const kind = event.code === 4001 ? "auth" : "socket";
    this._report({ kind, code: event.code, detail: event.reason || `closed with ${event.code}` });
    this._socketGone();
  }

  /** The socket failed or closed: retry on the schedule, or poll and probe after it. */
  _socketGone() {
    if (this._stopped) return;
    if (this.isPolling || this.reconnectAttempts >= this.maxReconnectAttempts) {
      this._fallBack();
      return;
    }
    this.reconnectAttempts += 1;
    this._setStatus(Status.RECONNECTING);
    const delay = backoffDelay(this.reconnectAttempts, this.reconnectInterval, { jitter: this.jitter });
    const attempt = `attempt ${this.reconnectAttempts} of ${this.maxReconnectAttempts}`;
    this._log(`Reconnecting in ${(delay / 1000).toFixed(1)}s (${attempt})`);
    this._later("retry", delay, () => this._open());
  }

  _fallBack() {
    if (!this.isPolling && this._polls.length) {
      this._log("Polling the REST API until the WebSocket is back");
      this._startPolling();
    }
    if (!this.isPolling) this._setStatus(Status.OFFLINE);
    const delay = this.probeInterval
      ?? backoffDelay(MAX_BACKOFF_STEPS, this.reconnectInterval, { jitter: this.jitter });
    this._later("probe", delay, () => this._open());
  }

  /** A socket that has gone quiet (a half-open TCP connection) is replaced. */
  _armIdle() {
    if (!this.idleTimeout) return;
    this._later("idle", this.idleTimeout, () => {
      this._report({ kind: "socket", detail: `no message for ${this.idleTimeout} ms` });
      this._dropSocket(4000, "idle");
      this._socketGone();
    });
  }

  _dropSocket(code, reason) {
    const socket = this._socket;
    this._socket = null;
    this._clearTimer("idle");
    this._clearTimer("opening");
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch {
      socket.close();
    }
  }

  // messages ----------------------------------------------------------------------------

  /** Track the seq of the message's stream; drop news already handled; deliver. */
  _accept(message) {
    if (message && typeof message.seq === "number") {
      const stream = message.channel
        ? streamOfChannel(message.channel, this.channels)
        : this._stream ?? DEFAULT_STREAM;
      const last = this.lastSeq[stream];
      // Equal: a poll and the socket both brought it. Lower: the gateway restarted.
      if (NEWS.has(message.type) && message.seq === last) return;
      this.lastSeq[stream] = message.seq;
    }
    this._emit("message", message);
  }

  // polling -----------------------------------------------------------------------------

  _startPolling() {
    this._poller = new RestPoller({
      base: apiBase(this.url),
      query: pollQuery(this.url),
      streams: this._polls,
      token: this.token,
      wait: this.pollWait,
      lastSeq: (stream) => this.lastSeq[stream],
      onMessage: (message, stream) => this._accept(this.channels ? { ...message, channel: stream } : message),
      onHealth: (ok) => this._setStatus(ok ? Status.POLLING : Status.OFFLINE),
      onError: (error) => this._report(error),
      retryDelay: () => backoffDelay(1, this.reconnectInterval, { jitter: this.jitter }),
      fetch: this._fetch,
    });
    this._setStatus(Status.POLLING);
    this._poller.start();
  }

  _stopPolling() {
    this._poller?.stop();
    this._poller = null;
  }

  // plumbing ----------------------------------------------------------------------------

  _later(name, ms, job) {
    this._clearTimer(name);
    this._timers.set(name, setTimeout(() => {
      this._timers.delete(name);
      job();
    }, ms));
  }

  _clearTimer(name) {
    const timer = this._timers.get(name);
    if (timer !== undefined) clearTimeout(timer);
    this._timers.delete(name);
  }

  _setStatus(status) {
    if (this._stopped && status !== Status.CLOSED) return;
    const previous = this._lastAnnounced;
    if (previous && previous.status === status && previous.reconnectAttempts === this.reconnectAttempts) {
      return;
    }
    this.status = status;
    this._lastAnnounced = { status, reconnectAttempts: this.reconnectAttempts };
    this._emit("status", { ...this._lastAnnounced });
  }

  _log(line) {
    if (this.logging) console.log(`[WebSocket] ${line}`);
  }

  _report(error) {
    this._emit("error", error);
  }

  _listen(kind, listener) {
    this._listeners[kind].add(listener);
    return () => this._listeners[kind].delete(listener);
  }

  _emit(kind, value) {
    for (const listener of [...this._listeners[kind]]) {
      try {
        listener(value);
      } catch (error) {
        if (kind === "error") console.error(error);
        else this._report({ kind: "listener", detail: `a ${kind} listener threw: ${error}`, error });
      }
    }
  }
}

/**
 * Create and connect a {@link GatewayClient}.
 * @param {GatewayClientOptions} options
 * @returns {GatewayClient}
 */
export function connectGateway(options) {
  return new GatewayClient(options).connect();
}
