/**
 * `useWebSocket` and `useAlertsWebSocket`: the seed's Vue 3 composables, on top of
 * {@link module:gateway-client} (so with jitter, `?since=` resume and the polling
 * fallback).
 *
 * It imports the bare specifier `vue`, so the app's own Vue is the one used: a
 * bundler resolves it, and a page without a bundler maps it with an import map
 * (the gateway ships Vue at `/static/vendor/vue.esm-browser.prod.js`):
 *
 * ```html
 * <script type="importmap">
 *   {"imports": {"vue": "/static/vendor/vue.esm-browser.prod.js"}}
 * </script>
 * ```
 *
 * (A hard-coded path would load a second copy of Vue next to the app's, and
 * `onUnmounted` would then register with the wrong one and never run.)
 *
 * @module use-websocket
 */

import { getCurrentInstance, onUnmounted, ref } from "vue";

import {
  DEFAULT_MAX_RECONNECT_ATTEMPTS,
  DEFAULT_RECONNECT_INTERVAL,
  GatewayClient,
  Status,
} from "./gateway-client.js";

/**
 * @typedef {object} UseWebSocketOptions
 * @property {string} url `/ws/alerts`, `/ws/sensors`, or a full `ws://` URL
 * @property {(message: object) => void} [onMessage] every message, parsed
 * @property {number} [reconnectInterval=3000] ms; attempt n waits `interval * min(n, 5)` ±20%
 * @property {number} [maxReconnectAttempts=10] then poll the REST fallback and probe
 * @property {string} [token] a JWT, sent as the subprotocol `bearer.<token>`
 * @property {boolean} [quiet=false] no `[WebSocket] ...` lines in the console
 *   (the same as `logging: false`)
 *
 * Any other {@link GatewayClientOptions} (`channels`, `jitter`, `poll`, `onError`...)
 * is passed through to the client.
 */

/**
 * @typedef {object} UseWebSocketResult
 * @property {import("vue").Ref<boolean>} isConnected true while the WebSocket is open
 * @property {import("vue").Ref<number>} reconnectAttempts the attempt under way, 0 when connected
 * @property {(message: object | string) => boolean} send false if no socket is open
 * @property {() => boolean} ping sends `{"action": "ping"}`; the `pong` comes to onMessage
 * @property {import("vue").Ref<string>} status connecting | connected | reconnecting | polling | offline | closed
 * @property {() => void} disconnect what `onUnmounted` calls: closes the socket, clears every timer
 */

/**
 * A WebSocket to the gateway that reconnects by itself, for a component's lifetime.
 *
 * Call it in `setup()`: the socket closes and every timer is cleared when the
 * component unmounts. Called elsewhere, call `disconnect()` yourself.
 *
 * @param {UseWebSocketOptions} options
 * @returns {UseWebSocketResult}
 */
export function useWebSocket(options) {
  const {
    url, onMessage, reconnectInterval = DEFAULT_RECONNECT_INTERVAL,
    maxReconnectAttempts = DEFAULT_MAX_RECONNECT_ATTEMPTS, ...rest
  } = options;
  const isConnected = ref(false);
  const reconnectAttempts = ref(0);
  const status = ref(Status.IDLE);
  const client = new GatewayClient({ ...rest, url, reconnectInterval, maxReconnectAttempts });
  client.onStatus((change) => {
    status.value = change.status;
    isConnected.value = change.status === Status.CONNECTED;
    reconnectAttempts.value = change.reconnectAttempts;
  });
  if (onMessage) client.onMessage(onMessage);
  const disconnect = () => client.close();
  if (getCurrentInstance()) onUnmounted(disconnect);
  client.connect();
  return {
    isConnected,
    reconnectAttempts,
    send: (message) => client.send(message),
    ping: () => client.ping(),
    status,
    disconnect,
  };
}

/** The alert messages that carry the counts: what the seed's handler is given. */
export const COUNT_MESSAGES = new Set(["initial", "update", "refresh"]);

/**
 * {@link useWebSocket} on the gateway's `/ws/alerts`, as the seed calls it:
 *
 * ```js
 * const { isConnected } = useAlertsWebSocket(handleAlertUpdate);
 * function handleAlertUpdate(data) { alertCount.value = data.total; }
 * ```
 *
 * A function is called as `handler(data, message)` with the counts
 * (`data` = `{total, critical, warning, info}`) of `initial`, `update` and `refresh`
 * messages only (not `pong`, `heartbeat` or `dismissed`). Options go second
 * (`useAlertsWebSocket(handler, {quiet: true})`); an options object alone works as
 * for {@link useWebSocket}, with `onCounts` for the seed's handler and `onMessage`
 * for every message. `url` defaults to `/ws/alerts` on this page's host.
 *
 * @param {((data: object, message: object) => void) | Partial<UseWebSocketOptions>} [handlerOrOptions]
 * @param {Partial<UseWebSocketOptions>} [options] when the first argument is the handler
 * @returns {UseWebSocketResult}
 */
export function useAlertsWebSocket(handlerOrOptions = {}, options = {}) {
  const all = typeof handlerOrOptions === "function"
    ? { ...options, onCounts: handlerOrOptions }
    : handlerOrOptions;
  const { onCounts, onMessage, ...rest } = all;
  const deliver = (message) => {
    if (onMessage) onMessage(message);
    const alerts = message.channel === undefined || String(message.channel).startsWith("alerts");
    if (onCounts && alerts && COUNT_MESSAGES.has(message.type) && message.data) {
      onCounts(message.data, message);
    }
  };
  return useWebSocket({ url: "/ws/alerts", ...rest, onMessage: deliver });
}
