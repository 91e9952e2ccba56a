/**
 * A value as written (a URL, or a comma-separated list of them: Redis seeds, a proxy), with the password of every
 * `user:password@` in it shown as `***`: for a log line or a config error.
 */
export function withoutPasswords(value: string): string {
  return value.replace(/(^|\/\/|,)([^:@/\s,]*):[^@/\s,]*@/g, '$1$2:***@');
}
