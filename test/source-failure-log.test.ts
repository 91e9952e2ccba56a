import { describe, expect, it } from 'vitest';
import { loggedLines } from './helpers/log-lines.js';
import { SourceFailureLog } from '../src/observability/source-failure-log.js';

describe('SourceFailureLog', () => {
  it('one warn line per source per request, then a summary per source per interval when it repeats', () => {
    const { logger, lines } = loggedLines();
    const log = new SourceFailureLog(logger, { linesPerInterval: 5, intervalMs: 60_000 });
    for (let i = 0; i < 8; i++) log.record(`req-${i}`, 'Dashboard', { source: 'notifications', code: i < 6 ? 'SOURCE_UNAVAILABLE' : 'SOURCE_TIMEOUT', fields: 2, stale: 0 });
    log.record('req-a', null, { source: 'analytics', code: 'SOURCE_BAD_RESPONSE', fields: 1, stale: 0, detail: 'POST /v1/metrics/query: body is not JSON' });
    expect(lines).toHaveLength(6);
    expect(lines.every((l) => l.level === 40 && !('stack' in l) && !('err' in l))).toBe(true);
    expect(lines[0]).toMatchObject({ requestId: 'req-0', operation: 'Dashboard', source: 'notifications', code: 'SOURCE_UNAVAILABLE', fields: 2 });
    expect(lines[5]).toMatchObject({ requestId: 'req-a', source: 'analytics', detail: 'POST /v1/metrics/query: body is not JSON' });
    log.close();
    expect(lines).toHaveLength(7);
    expect(lines[6]).toMatchObject({ level: 40, source: 'notifications', requests: 3, codes: { SOURCE_UNAVAILABLE: 1, SOURCE_TIMEOUT: 2 } });
    // A new interval writes lines in full again.
    const after = new SourceFailureLog(logger, { linesPerInterval: 1, intervalMs: 60_000 });
    after.record('req-x', null, { source: 'notifications', code: 'SOURCE_TIMEOUT', fields: 1, stale: 0 });
    after.flush();
    after.record('req-y', null, { source: 'notifications', code: 'SOURCE_TIMEOUT', fields: 1, stale: 0 });
    expect(lines.slice(7).map((l) => l.requestId)).toEqual(['req-x', 'req-y']);
    after.close();
  });
});
