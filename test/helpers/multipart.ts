/**
 * Reads a `multipart/mixed` GraphQL response (incremental delivery, @defer and
 * @stream) part by part, as they arrive, each with the ms since `startedAt`.
 * Written here, apart from the server's code and the example client's urql,
 * so the wire format is checked by a third reader.
 */
export interface Part {
  at: number;
  body: Record<string, any>;
}

export async function readParts(res: Response, startedAt: number): Promise<Part[]> {
  const type = res.headers.get('content-type') ?? '';
  const boundary = /boundary="?([^";]+)"?/.exec(type)?.[1];
  if (!type.startsWith('multipart/mixed') || !boundary) throw new Error(`not a multipart response: ${res.status} ${type} ${await res.text()}`);
  const delimiter = `\r\n--${boundary}`;
  const parts: Part[] = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (;;) {
      const start = buffer.indexOf(delimiter);
      const end = start === -1 ? -1 : buffer.indexOf(delimiter, start + delimiter.length);
      if (end === -1) break;
      const chunk = buffer.slice(start + delimiter.length, end);
      buffer = buffer.slice(end);
      const bodyAt = chunk.indexOf('\r\n\r\n');
      if (bodyAt !== -1) parts.push({ at: Date.now() - startedAt, body: JSON.parse(chunk.slice(bodyAt + 4)) as Record<string, any> });
    }
  }
  return parts;
}
