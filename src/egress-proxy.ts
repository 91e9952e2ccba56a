import { EnvHttpProxyAgent, type Dispatcher } from 'undici';
import type { ProxySettings } from './config-types.js';

/** A host a proxy can never reach for us: one on our own loopback (the simulated vendors, a sidecar). */
const LOOPBACK = 'localhost,127.0.0.1,[::1]';

/**
 * What reaches the outside world over HTTP (vendors, an identity provider's JWKS) through the configured forward
 * proxy: undici's EnvHttpProxyAgent, a CONNECT tunnel per kept connection, NO_PROXY and loopback reached directly.
 * `options` are the pools' behind it (connections, keep-alive, limits).
 */
export function proxyAgent(proxy: ProxySettings, options: EnvHttpProxyAgent.Options = {}): EnvHttpProxyAgent {
  return new EnvHttpProxyAgent({
    ...options,
    // Given, never left to undici: it would read the environment itself, and '' turns a scheme's proxy off.
    httpProxy: proxy.http ?? '',
    httpsProxy: proxy.https ?? '',
    noProxy: [proxy.noProxy, LOOPBACK].filter(Boolean).join(','),
  });
}

/**
 * One origin's pool behind the proxy. The agent routes by each request's origin, which a call to a pool does not
 * name: it is added here, so a source calls either alike.
 */
export function originBehindProxy(origin: string, proxy: ProxySettings, options: EnvHttpProxyAgent.Options): Dispatcher {
  return proxyAgent(proxy, options).compose((dispatch) => (opts, handler) => dispatch({ ...opts, origin }, handler));
}
