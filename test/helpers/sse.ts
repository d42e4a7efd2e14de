import { type IncomingMessage, request } from 'node:http';

/** One Server-Sent Event (or a comment line, as `comment`). */
export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** everything received so far, in order */
  events: SseEvent[];
  /** resolves with the first event (after those already seen) matching `pred`, or rejects after `timeoutMs` */
  waitFor(pred: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** the error body when the server refused the stream */
  body?: unknown;
  close(): void;
  /** resolves when the server ended the stream */
  ended: Promise<void>;
}

/** Opens `url` as an event stream (node:http: closing it closes the connection) and parses frames as they arrive. */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseStream> {
  const req = request(url, { headers: { accept: 'text/event-stream', ...headers } });
  req.end();
  const res: IncomingMessage = await new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  req.on('error', () => {});
  const responseHeaders = new Headers();
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
  const events: SseEvent[] = [];
  const waiters: Array<{ pred: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }> = [];
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    let text = '';
    for await (const chunk of res) text += chunk;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return {
      status,
      headers: responseHeaders,
      events,
      body,
      waitFor: () => Promise.reject(new Error(`stream refused: ${status}`)),
      close: () => req.destroy(),
      ended: Promise.resolve(),
    };
  }
  res.setEncoding('utf8');
  let buf = '';
  res.on('data', (chunk: string) => {
    buf += chunk;
    let cut = buf.indexOf('\n\n');
    while (cut >= 0) {
      const frame = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const e: SseEvent = {};
      for (const line of frame.split('\n')) {
        if (line.startsWith(':')) e.comment = line.slice(1).trim();
        else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'id' || field === 'event' || field === 'data') e[field] = val;
        }
      }
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
      cut = buf.indexOf('\n\n');
    }
  });
  const ended = new Promise<void>((resolve) => {
    res.once('end', resolve);
    res.once('close', resolve);
    res.once('error', () => resolve());
  });
  return {
    status,
    headers: responseHeaders,
    events,
    waitFor(pred, timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const hit = events.find(pred);
        if (hit) return resolve(hit);
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) {
            waiters.splice(i, 1);
            reject(new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
          }
        }, timeoutMs);
      });
    },
    close: () => req.destroy(),
    ended,
  };
}

/** The `key.revoked` events' key ids, in order. */
export function revokedIds(events: SseEvent[]): string[] {
  return events
    .filter((e) => e.event === 'key.revoked')
    .map((e) => (JSON.parse(e.data ?? '{}') as { key_id: string }).key_id);
}
