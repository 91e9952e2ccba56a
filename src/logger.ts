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
  return pino(base);
}
