import { SourceError, type SourceErrorCode } from '../errors.js';
import type { AuditEventInput } from '../sources/audit/audit-source.js';

export type DeliveryState = 'DELIVERED' | 'QUEUED' | 'FAILED';
export type WriteStatus = 'COMPLETE' | 'PARTIAL' | 'FAILED';
export type DeliveryTarget = 'IDENTITY' | 'NOTIFICATIONS' | 'AUDIT';

export interface DeliveryError {
  code: SourceErrorCode | 'INTERNAL';
  message: string;
  retryable: boolean;
}

/** One target's part of a write, as the payload and `deliveries` report it. */
export interface DeliveryRecord {
  id: string;
  target: DeliveryTarget;
  primary: boolean;
  state: DeliveryState;
  attempts: number;
  error: DeliveryError | null;
  operation: string;
  createdAt: string;
}

/** A secondary side effect, as queued: everything needed to send it again, from any instance, after a restart. */
export interface SecondaryJob {
  operation: string;
  target: 'AUDIT';
  event: AuditEventInput;
  /** Derived from the mutation's key: every attempt sends the same one, so the target records it once. */
  idempotencyKey: string;
  createdAt: string;
}

/** Sends one secondary; throws a SourceError when it could not. */
export type Deliver = (job: SecondaryJob) => Promise<void>;

export function deliveryError(e: unknown): DeliveryError {
  if (e instanceof SourceError) return { code: e.code, message: e.message, retryable: e.retryable };
  return { code: 'INTERNAL', message: 'Unexpected error.', retryable: true };
}

/** A failure retrying will not fix (the target rejected the request itself). */
export function isPermanent(e: unknown): boolean {
  return e instanceof SourceError && !e.retryable && !e.local;
}
