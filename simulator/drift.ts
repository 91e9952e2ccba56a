import type { FaultProfile } from './faults.js';

/** The unknown field `extraFields` adds: a value of some depth, as a vendor's new feature would be. */
export const EXTRA_FIELD = 'x_drift';
const EXTRA_VALUE = { added: '2026-12-01', nested: { flags: [1, 2] } };

type Drift = Pick<FaultProfile, 'extraFields' | 'renameFields' | 'retypeFields' | 'setFields'>;

export function hasDrift(faults: Drift): boolean {
  return faults.extraFields || Object.keys(faults.renameFields).length > 0 || faults.retypeFields.length > 0 || Object.keys(faults.setFields).length > 0;
}

function retyped(value: unknown): unknown {
  return typeof value === 'string' ? value.length : String(value);
}

/** A copy of a JSON body with the profile's drift applied to every object in it (maps keyed by id are objects too). */
export function applyDrift(body: unknown, faults: Drift): unknown {
  if (Array.isArray(body)) return body.map((item) => applyDrift(item, faults));
  if (body === null || typeof body !== 'object') return body;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const name = faults.renameFields[key] ?? key;
    const drifted = key in faults.setFields ? faults.setFields[key] : applyDrift(value, faults);
    out[name] = faults.retypeFields.includes(key) ? retyped(drifted) : drifted;
  }
  if (faults.extraFields) out[EXTRA_FIELD] = EXTRA_VALUE;
  return out;
}
