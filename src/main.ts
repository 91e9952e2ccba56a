import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { runPrimary } from './cluster/primary.js';
import { serve } from './serve.js';

/**
 * Entry point: config → the simulated upstreams when no upstream is configured
 * → the server. With nothing configured it is a self-contained demo: fake data,
 * a fresh signing secret, and an admin token printed for GraphiQL.
 */
let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}

const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true && !config.production, bufferMaxBytes: config.logBufferMaxBytes });
if (cluster.isPrimary && config.workersLimitedBy !== null) {
  logger.info({ workers: config.workers }, `WORKERS is ${config.workers} by default here, not one per core: set by ${config.workersLimitedBy} (set WORKERS to choose)`);
}
if (cluster.isPrimary && config.workersMemoryShortfall !== null) logger.warn({ workers: config.workers }, config.workersMemoryShortfall);
if (cluster.isPrimary && config.workers > 1 && config.upstreams !== null) {
  runPrimary({ workers: config.workers, logger, shutdownGraceMs: config.ops.shutdownGraceMs, workerStallTimeoutMs: config.workerStallTimeoutMs });
} else {
  if (cluster.isPrimary && config.workers > 1) {
    logger.warn(
      { workers: config.workers },
      'WORKERS is ignored by the embedded demo: its simulated vendors live in this one process. Run `npm run upstreams` and point the server at them (IDENTITY_URL, …) to use several workers.',
    );
  }
  await serve(config, logger);
}
