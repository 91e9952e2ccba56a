/**
 * `npm run token -- --sub <user id> [--admin] [--expires 1h]`: a bearer token
 * signed with AUTH_JWT_SECRET (as the server verifies it: HS256, `sub`, `exp`,
 * `scope: admin` for --admin), printed alone on stdout so a shell can keep it:
 *
 *   export TOKEN=$(npm run -s token -- --sub 'auth0|…' --admin)
 *
 * Honours AUTH_ISSUER and AUTH_AUDIENCE when the server checks them. For the
 * embedded demo (no AUTH_JWT_SECRET), the server prints its own token instead.
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';

const usage = 'usage: npm run token -- --sub <user id> [--admin] [--expires 1h]   (AUTH_JWT_SECRET must be set, as for the server)';
let values: { sub?: string; admin?: boolean; expires?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { sub: { type: 'string' }, admin: { type: 'boolean', default: false }, expires: { type: 'string', default: '1h' }, help: { type: 'boolean', short: 'h' } },
  }));
} catch (error) {
  console.error(`${(error as Error).message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const secret = process.env.AUTH_JWT_SECRET;
if (!secret) {
  console.error(`AUTH_JWT_SECRET is not set: export the secret the server runs with. (The embedded demo, started without it, prints its own admin token.)\n${usage}`);
  process.exit(2);
}
if (!values.sub) {
  console.error(`--sub is required: the user the token speaks for (e.g. the id \`npm run upstreams\` prints).\n${usage}`);
  process.exit(2);
}
let jwt = new SignJWT(values.admin ? { scope: 'admin' } : {}).setProtectedHeader({ alg: 'HS256' }).setSubject(values.sub).setIssuedAt().setExpirationTime(values.expires!);
if (process.env.AUTH_ISSUER) jwt = jwt.setIssuer(process.env.AUTH_ISSUER);
if (process.env.AUTH_AUDIENCE) jwt = jwt.setAudience(process.env.AUTH_AUDIENCE);
console.log(await jwt.sign(new TextEncoder().encode(secret)));
