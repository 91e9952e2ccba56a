import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.js';

/** One JSON log line as pino writes it. */
export type LogLine = { level: number; msg: string } & Record<string, unknown>;

/** A logger whose lines are kept, parsed, in `lines` (in the order written). */
export function loggedLines(level: 'debug' | 'info' = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({ level, destination: new Writable({ write: (c: Buffer, _e, done) => (lines.push(JSON.parse(c.toString()) as LogLine), done()) }) });
  return { logger, lines };
}
