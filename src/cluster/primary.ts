import cluster, { type Worker } from 'node:cluster';
import { lruOfEntries } from '../cache/lru-of-entries.js';
import { AggregatorRegistry } from 'prom-client';
import { uncaughtWhat, type Logger } from '../logger.js';
import { ALIVE, ALIVE_EVERY_MS, ANSWER, ASK, BROADCAST, type SiblingMessage } from '../siblings.js';
import { RestartGuard } from './restart-guard.js';
import { StalledWorkers } from './stalled-workers.js';

/** Webhook ids are remembered longer than a vendor retries (24 h). */
const REMEMBER_WEBHOOK_IDS_MS = 25 * 3_600_000;

/**
 * `WORKERS=N`: the primary of a node:cluster set. It serves nothing itself:
 * N workers share the port (each with the node flags this process got, so
 * each has its own heap bound). It relays what workers say to each other
 * (cache invalidations, live events), answers what must be one across them
 * without Redis (webhook ids seen), aggregates `/metrics`, replaces a worker
 * that dies (and stops after a crash loop), and on SIGTERM drains them all.
 */
export function runPrimary(options: { workers: number; logger: Logger; shutdownGraceMs: number; workerStallTimeoutMs: number }): void {
  const { workers, logger } = options;
  const aggregator = new AggregatorRegistry();
  const seenWebhooks = lruOfEntries<string, true>(500_000, { ttl: REMEMBER_WEBHOOK_IDS_MS });
  const guard = new RestartGuard();
  const indexOf = new Map<Worker, number>();
  const silent = new StalledWorkers<Worker>(options.workerStallTimeoutMs);
  let stopping = false;
  /** Something nothing caught happened here: the set stops, and says so with its exit code. */
  let failed = false;

  const answer = async (question: string | undefined, payload: unknown): Promise<unknown> => {
    switch (question) {
      case 'metrics':
        return aggregator.clusterMetrics();
      case 'webhook-seen': {
        const key = String(payload);
        if (seenWebhooks.has(key)) return 'duplicate';
        seenWebhooks.set(key, true);
        return 'accepted';
      }
      default:
        throw new Error(`unknown question ${question}`);
    }
  };

  const fork = (index: number) => {
    const worker = cluster.fork({ WORKER_INDEX: String(index), WORKERS: String(workers) });
    indexOf.set(worker, index);
    worker.on('message', (m: SiblingMessage) => {
      if (m?.type === ALIVE) {
        // Watched from its first word on: starting (loading modules, building the schema) may take longer on a busy
        // machine, and a worker that never starts says so by never listening.
        if (options.workerStallTimeoutMs > 0) silent.heard(worker);
      } else if (m?.type === BROADCAST) {
        for (const other of Object.values(cluster.workers ?? {})) if (other && other !== worker && other.isConnected()) other.send(m);
      } else if (m?.type === ASK) {
        answer(m.question, m.payload).then(
          (payload) => worker.isConnected() && worker.send({ type: ANSWER, id: m.id, payload }),
          (err: unknown) => logger.warn({ question: m.question, err: (err as Error).message }, 'A worker asked what the primary could not answer'),
        );
      }
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const index = indexOf.get(worker) ?? 0;
    indexOf.delete(worker);
    silent.forget(worker);
    const alive = Object.keys(cluster.workers ?? {}).length;
    if (stopping) {
      if (alive === 0) {
        logger.info('All workers stopped');
        process.exit(failed ? 1 : 0);
      }
      return;
    }
    const pause = guard.next();
    if (pause === null) {
      logger.error(
        { worker: index, pid: worker.process.pid, code, signal, alive },
        `Worker ${index} died again: more than 5 deaths within a minute is a crash loop, so it is not replaced (look at its last lines above)`,
      );
      if (alive === 0) process.exit(1);
      return;
    }
    logger.warn({ worker: index, pid: worker.process.pid, code, signal, restartInMs: pause }, `Worker ${index} exited (${signal ?? `code ${code}`}); replacing it`);
    setTimeout(() => fork(index), pause);
  });

  /** Every worker drains within its grace period; past that and a margin, whatever is left is killed. */
  const drainAll = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    setTimeout(() => {
      logger.warn('Workers still running after the shutdown grace period: killing them');
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }, options.shutdownGraceMs + 5_000).unref();
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      if (stopping) return;
      logger.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, 'shutting down: draining every worker');
      drainAll();
    });
  }
  // As in a worker (serve.ts): what nothing caught is one fatal line with its stack, and the set stops as on SIGTERM,
  // its workers answering what they hold, with exit code 1; before, the primary died with a bare stack and its
  // workers, disconnected, stopped without a word of why.
  process.on('uncaughtException', (error, origin) => {
    if (failed) return;
    failed = true;
    logger.fatal({ err: error, origin }, `${uncaughtWhat(origin)} in the primary: every worker drains (SHUTDOWN_GRACE_MS), then it exits with code 1`);
    if (!stopping) drainAll();
  });

  if (options.workerStallTimeoutMs > 0) {
    setInterval(() => {
      if (stopping) return;
      for (const { worker, silentMs } of silent.stalled()) {
        logger.error(
          { worker: indexOf.get(worker), pid: worker.process.pid, silentMs: Math.round(silentMs), timeoutMs: options.workerStallTimeoutMs },
          `Worker ${indexOf.get(worker)} has not said it is alive for ${Math.round(silentMs / 1000)} s (WORKER_STALL_TIMEOUT_MS): its event loop is stuck, and what it holds hangs. Killing it (SIGKILL) to replace it`,
        );
        worker.process.kill('SIGKILL');
      }
    }, ALIVE_EVERY_MS).unref();
  }
  logger.info({ workers, pid: process.pid }, `Primary: starting ${workers} workers on one port`);
  for (let i = 0; i < workers; i++) fork(i);
}
