// Server-sent events as OpenAI-compatible servers send them: `data: <json>` lines separated by blank lines, ending
// with `data: [DONE]`. Network chunks split events anywhere, so bytes are buffered until an event is complete.

export class SseParser {
  private buffer = '';
  private readonly decoder = new TextDecoder();

  /** Feeds bytes; returns the `data:` payloads of the events they complete, in order. */
  push(bytes: Uint8Array): string[] {
    this.buffer += this.decoder.decode(bytes, { stream: true }).replaceAll('\r\n', '\n');
    const payloads: string[] = [];
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''));
      if (data.length > 0) payloads.push(data.join('\n'));
    }
    return payloads;
  }
}
