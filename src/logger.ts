import { trace, TraceFlags } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config-types.js';

export type { Logger } from 'pino';

/**
 * Paths pino blanks wherever they appear. Sources never log headers or bodies,
 * but a future `logger.debug({ headers })` must not leak a credential either.
 */
const REDACT = [
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
  '*.headers.cookie',
  'clientSecret',
  '*.clientSecret',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'jwtSecret',
  '*.jwtSecret',
];

export interface LoggerOptions {
  level: LogLevel;
  /** What the log holds for stdout at most while stdout is not read (LOG_BUFFER_MAX_BYTES); past it, lines are dropped and counted. */
  bufferMaxBytes?: number;
  /** Human-readable lines (pino-pretty) instead of JSON; for a terminal. */
  pretty?: boolean;
  /** Where JSON lines go (tests capture them); stdout when absent. */
  destination?: NodeJS.WritableStream;
}

/** The trace a line was written in (the request's, when tracing is on), so a log line leads to its trace. */
function traceFields(): { traceId?: string; spanId?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  // Not sampled or not recording (tracing off): nothing to find, nothing to add.
  return traceFlags & TraceFlags.SAMPLED ? { traceId, spanId } : {};
}

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, redact: { paths: REDACT, censor: '[redacted]' }, base: undefined, mixin: traceFields };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  const bufferMaxBytes = options.bufferMaxBytes ?? LOG_BUFFER_MAX_BYTES_DEFAULT;
  const stdout = stdoutDestination(bufferMaxBytes);
  const logger = pino(base, stdout);
  let droppedSince = 0;
  let firstDropAt = 0;
  stdout.on('drop', () => {
    droppedLines++;
    if (droppedSince++ === 0) firstDropAt = performance.now();
  });
  stdout.on('drain', () => {
    if (droppedSince === 0) return;
    const dropped = droppedSince;
    droppedSince = 0;
    logger.warn(
      { dropped, forMs: Math.round(performance.now() - firstDropAt), bufferMaxBytes },
      `${dropped} log lines were dropped: stdout was not read (a stalled log collector) while LOG_BUFFER_MAX_BYTES waited for it`,
    );
  });
  return logger;
}

export const LOG_BUFFER_MAX_BYTES_DEFAULT = 8 * 1024 * 1024;
/** How long an exiting process goes on offering what it holds to a stdout nobody reads. */
const EXIT_FLUSH_MS = 2000;
let droppedLines = 0;

/** Log lines dropped since start because stdout was not read (a stalled log collector). */
export function droppedLogLines(): number {
  return droppedLines;
}

/**
 * stdout, written asynchronously as pino does by default, but with a bound. A log collector that stops reading (a
 * stalled pipe, a container runtime's full log driver) left pino buffering every line in the heap: measured at
 * 11,000 requests a second, the process ran out of memory within a minute. Past `maxBytes` held, lines are dropped
 * and counted (createLogger says how many once stdout is read again). And on exit pino flushes what it holds
 * synchronously, retrying as long as stdout is full: with nobody reading, a SIGTERM never ended; now it gives up
 * after EXIT_FLUSH_MS.
 */
function stdoutDestination(maxBytes: number): ReturnType<typeof pino.destination> {
  let exitingAt: number | undefined;
  // Before pino's own exit flush (listeners run in order), so that flush knows when the process began to exit.
  process.once('exit', () => (exitingAt = performance.now()));
  const stream = pino.destination({
    dest: 1,
    sync: false,
    maxLength: maxBytes,
    retryEAGAIN: () => exitingAt === undefined || performance.now() - exitingAt < EXIT_FLUSH_MS,
  });
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = () => {
    try {
      flushSync();
    } catch (error) {
      // What stdout would not take within EXIT_FLUSH_MS: lost with the process, as it would have been without an exit.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  };
  return stream;
}

/** What an `uncaughtException` handler was called for, as its fatal line opens. */
export function uncaughtWhat(origin: NodeJS.UncaughtExceptionOrigin): string {
  return origin === 'unhandledRejection' ? 'A promise was rejected with nothing to handle it' : 'An exception was thrown with nothing to catch it';
}
