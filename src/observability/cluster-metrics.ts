import { AggregatorRegistry } from 'prom-client';
import type { Siblings } from '../siblings.js';
import type { Metrics } from './metrics.js';

/**
 * `/metrics` for a WORKERS=N set, whichever worker is asked: this worker
 * answers the primary's requests for its own metrics (prom-client's cluster
 * protocol), and relays a scrape to the primary, which gathers every worker's
 * and aggregates them (counters and histograms summed, gauges by their own
 * aggregator: max for the per-source gauges).
 */
export function clusterExposition(metrics: Metrics, siblings: Siblings): () => Promise<string> {
  AggregatorRegistry.setRegistries([metrics.registry]);
  // Made for its side effect: it adds the worker's listener for the primary's requests.
  new AggregatorRegistry();
  return async () => String(await siblings.ask('metrics', null));
}
