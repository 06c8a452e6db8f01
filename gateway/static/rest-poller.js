/**
 * The REST fallback of the gateway's streams, in the WebSocket's message shapes.
 *
 * `GET /api/alerts/summary` stands for `/ws/alerts` (its answers become `update`
 * messages) and `GET /api/sensors/latest` for `/ws/sensors` (`sensor_update`),
 * each with the seq from `X-Seq`, so an app handles both the same way. The first
 * request, and the first after a failure, is a plain GET (it sees a gateway
 * restart at once); after that each is a long poll, `?wait=25&since=<seq>`, with
 * `If-None-Match`. {@link GatewayClient} runs one after its last reconnect attempt.
 *
 * @module rest-poller
 */

export const DEFAULT_POLL_WAIT = 25;

/** The REST fallback of each stream, and the message type a poll answer stands for. */
export const POLL_ENDPOINTS = Object.freeze({
  alerts: { path: "api/alerts/summary", type: "update" },
  sensors: { path: "api/sensors/latest", type: "sensor_update" },
});

/** ms: a long poll that answers at once with nothing new (the server did not wait) waits this long. */
const MIN_POLL_GAP = 1000;
/** ms a poll may take beyond its `wait` before it counts as lost. */
const POLL_GRACE = 15000;

/**
 * @typedef {object} RestPollerOptions
 * @property {string} base where the gateway's API is, `http://host:port/`
 * @property {Record<string, string>} [query] added to every poll (a relay's `reservoir`)
 * @property {string[]} streams which to poll: `alerts`, `sensors`
 * @property {(stream: string) => (number | undefined)} lastSeq the seq last handled, per stream
 * @property {(message: object, stream: string) => void} onMessage
 * @property {(ok: boolean) => void} [onHealth] after each answer (true) or failure (false)
 * @property {(error: {kind: string, detail: string, status?: number}) => void} [onError]
 * @property {() => number} [retryDelay] ms to wait after a failure (default 3000)
 * @property {string} [token] sent as `Authorization: Bearer`
 * @property {number} [wait=25] s a long poll may wait for news
 * @property {typeof fetch} [fetch]
 */

/** Polls some streams until {@link RestPoller#stop}. */
export class RestPoller {
  /** @param {RestPollerOptions} options */
  constructor(options) {
    this.options = { wait: DEFAULT_POLL_WAIT, retryDelay: () => 3000, ...options };
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this._controller = null;
  }

  /** True between {@link RestPoller#start} and {@link RestPoller#stop}. */
  get running() {
    return this._controller !== null;
  }

  /** Start one poll loop per stream. */
  start() {
    if (this.running) return;
    this._controller = new AbortController();
    for (const stream of this.options.streams) this._loop(stream, this._controller.signal);
  }

  /** Abort every request in flight and every wait; nothing is left behind. */
  stop() {
    this._controller?.abort();
    this._controller = null;
  }

  async _loop(stream, signal) {
    const state = { etag: null, body: null, resync: true };
    while (!signal.aborted) {
      const started = Date.now();
      let pause = 0;
      try {
        const { news, longPoll } = await this._once(stream, state, signal);
        if (!signal.aborted) this.options.onHealth?.(true);
        if (longPoll && !news && Date.now() - started < MIN_POLL_GAP) pause = MIN_POLL_GAP;
      } catch (error) {
        if (signal.aborted) return;
        state.resync = true;
        this.options.onHealth?.(false);
        this.options.onError?.(error.gateway ?? { kind: "http", detail: `poll ${stream}: ${error}` });
        pause = this.options.retryDelay();
      }
      if (pause) await sleep(pause, signal);
    }
  }

  /** One GET: a long poll once the seq is known, else a plain one. */
  async _once(stream, state, signal) {
    const { path, type } = POLL_ENDPOINTS[stream];
    const url = new URL(path, this.options.base);
    for (const [key, value] of Object.entries(this.options.query ?? {})) url.searchParams.set(key, value);
    const since = this.options.lastSeq(stream);
    const longPoll = since !== undefined && !state.resync;
    if (longPoll) {
      url.searchParams.set("wait", String(this.options.wait));
      url.searchParams.set("since", String(since));
    }
    const headers = { Accept: "application/json" };
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    if (state.etag) headers["If-None-Match"] = state.etag;
    const limit = withTimeout(signal, (longPoll ? this.options.wait * 1000 : 0) + POLL_GRACE);
    const response = await this._fetch(url.href, { headers, signal: limit, cache: "no-store" });
    if (response.status !== 304 && !response.ok) throw httpError(stream, response.status);
    if (response.ok) {
      state.body = await response.json();
      state.etag = response.headers.get("ETag");
    }
    state.resync = false;
    const seq = Number.parseInt(response.headers.get("X-Seq") ?? "", 10);
    const news = !signal.aborted && state.body !== null && Number.isInteger(seq) && seq !== since;
    if (news) {
      // A 304 with a new seq (news, same body) still counts: the cached body goes out.
      this.options.onMessage({ type, timestamp: new Date().toISOString(), seq, data: state.body }, stream);
    }
    return { news, longPoll };
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (its timer cleared). */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve();
    }, ms);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** `signal`, also aborted after `ms` where the browser can combine signals. */
function withTimeout(signal, ms) {
  if (typeof AbortSignal.any !== "function" || typeof AbortSignal.timeout !== "function") return signal;
  return AbortSignal.any([signal, AbortSignal.timeout(ms)]);
}

function httpError(stream, status) {
  const error = new Error(`poll ${stream}: HTTP ${status}`);
  const kind = status === 401 || status === 403 ? "auth" : "http";
  error.gateway = { kind, status, detail: error.message };
  return error;
}
