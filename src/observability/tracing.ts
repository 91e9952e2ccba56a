import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Logger } from '../logger.js';

export interface TracingSettings {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL; spans go to `<it>/v1/traces` (OTLP/HTTP, protobuf). */
  endpoint: string;
  serviceName: string;
}

/**
 * OpenTelemetry tracing, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set:
 * a tracer provider for this process with W3C trace context (`traceparent` in
 * from clients, out to vendors) and an async-local context, so spans started
 * anywhere in a request (its operation, each source call) join its trace.
 * Spans are batched and exported over OTLP/HTTP; `shutdown` flushes them.
 * Without it, the API's no-op tracer makes every span free.
 */
export function startTracing(settings: TracingSettings, logger: Logger): { shutdown(): Promise<void> } {
  const exporter = new OTLPTraceExporter({ url: `${settings.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': settings.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  provider.register();
  logger.info({ endpoint: settings.endpoint, service: settings.serviceName }, `Tracing: spans exported over OTLP/HTTP to ${settings.endpoint}/v1/traces`);
  return {
    shutdown: () =>
      provider.shutdown().catch((err: unknown) => {
        logger.warn({ err: (err as Error).message }, 'Tracing: the last spans could not be exported');
      }),
  };
}
