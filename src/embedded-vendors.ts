import type { UpstreamEndpoints } from './sources/registry.js';

/**
 * The simulated vendors (`simulator/`), for the demo `npm start` runs when no
 * upstream is configured. Loaded dynamically, never imported: production code
 * does not depend on the simulation, and the build (`dist/`) does not hold it.
 * Only what the entry point needs of it is typed here.
 */
export interface EmbeddedVendors {
  endpoints: UpstreamEndpoints;
  /** A seeded user to sign the demo token for. */
  firstUserId: string | undefined;
  /** name → base URL, to print with its admin endpoint. */
  urls: Record<keyof UpstreamEndpoints, string>;
  close(): Promise<void>;
}

interface SimulatorModule {
  startSimulatedUpstreams(): Promise<{
    endpoints: UpstreamEndpoints;
    dataset: { users: { user_id: string }[] };
    identity: { url: string };
    analytics: { url: string };
    notifications: { url: string };
    audit: { url: string };
    close(): Promise<void>;
  }>;
}

/** A path, not a literal import: the compiler leaves the simulator out of the build. */
const SIMULATOR = '../simulator/index.js';

export async function startEmbeddedVendors(): Promise<EmbeddedVendors> {
  let simulator: SimulatorModule;
  try {
    simulator = (await import(SIMULATOR)) as SimulatorModule;
  } catch (error) {
    throw new Error(
      'No IDENTITY_URL, ANALYTICS_URL, NOTIFICATIONS_URL or AUDIT_URL is set, and the simulated vendors are not part of this build. ' +
        'Set all four with their credentials, or run the demo from the source tree (`npm start`).',
      { cause: error },
    );
  }
  const started = await simulator.startSimulatedUpstreams();
  return {
    endpoints: started.endpoints,
    firstUserId: started.dataset.users[0]?.user_id,
    urls: { identity: started.identity.url, analytics: started.analytics.url, notifications: started.notifications.url, audit: started.audit.url },
    close: () => started.close(),
  };
}
