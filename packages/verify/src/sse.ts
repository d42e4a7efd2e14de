import { BreezeVerifyError } from './errors.js';

/** One Server-Sent Event (WHATWG HTML, "Interpreting an event stream"). */
export interface SseEvent {
  event: string;
  data: string;
  /** the last event id seen so far (it persists across events, as the spec says) */
  id: string;
}

export interface SseHandlers {
  onEvent(event: SseEvent): void;
  /** a `retry:` field: the server's reconnection delay in ms */
  onRetry?(ms: number): void;
  /** any line at all, comments (`: ping`) included: the stream is alive */
  onActivity?(): void;
}

/**
 * An incremental event-stream parser: feed it decoded text chunks as they arrive (lines may be split
 * across chunks; CRLF, CR and LF all end a line).
 */
/** The most text one event's `data` lines may hold (a revocation is a few dozen characters). */
export const MAX_EVENT_DATA = 1_000_000;

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private dataSize = 0;
  private eventType = '';
  private lastId = '';
  private pendingCr = false;

  constructor(private readonly handlers: SseHandlers) {}

  get lastEventId(): string {
    return this.lastId;
  }

  feed(chunk: string): void {
    let text = chunk;
    // a CR ending the previous chunk already ended its line; a LF right after it belongs to it
    if (this.pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.pendingCr = false;
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    // a stream that never ends its lines must not grow memory without bound
    if (this.buffer.length > 1_000_000) this.buffer = '';
  }

  private line(line: string): void {
    this.handlers.onActivity?.();
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        // data lines without the blank line that ends an event must not grow memory without bound:
        // the stream is broken (the caller drops it, reconnects and resumes)
        this.dataSize += value.length + 1;
        if (this.dataSize > MAX_EVENT_DATA) {
          this.data = [];
          this.dataSize = 0;
          throw new BreezeVerifyError('BAD_RESPONSE', 'The event stream sent an event over 1 MB.');
        }
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.onRetry?.(Number(value));
        break;
      default:
        break;
    }
  }

  private dispatch(): void {
    this.dataSize = 0;
    if (this.data.length === 0) {
      this.eventType = '';
      return;
    }
    const event: SseEvent = {
      event: this.eventType || 'message',
      data: this.data.join('\n'),
      id: this.lastId,
    };
    this.data = [];
    this.eventType = '';
    this.handlers.onEvent(event);
  }
}
