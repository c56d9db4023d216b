import type fs from 'node:fs/promises';

/** Bytes gathered before each write call (the document's user lines, a journal line's users). */
export const WRITE_BUFFER_BYTES = 2 << 20;

/**
 * Gathers text into one reused buffer and writes it to a file handle when full. WARNING: the alternative,
 * a string of many users per write, makes strings over ~128 KB, which V8 allocates in its large-object
 * space where they stay as garbage until the next full collection (~100 MB of them at the end of a
 * 100,000-user import, when the heap is largest). A commit of a thousand users is one write call. Used by the
 * embedded store (its document and journal) and the audit log.
 */
export class BufferedFileWriter {
  private used = 0;
  /** Bytes handed to the file so far. */
  written = 0;

  /** `out`: the buffer to gather in (a caller writing often passes the same one each time). */
  constructor(
    private readonly handle: fs.FileHandle,
    private readonly out: Buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES),
  ) {}

  /**
   * Adds text to the buffer; false when it does not fit (then {@link add} it). Synchronous, for loops over
   * every user that should not pay a promise per user.
   */
  tryAdd(text: string): boolean {
    // Worst case three bytes per UTF-16 unit; the exact count only when that might not fit.
    if (this.used + text.length * 3 > this.out.length && this.used + Buffer.byteLength(text) > this.out.length) return false;
    this.used += this.out.write(text, this.used);
    return true;
  }

  /** Adds text, writing the buffer first when it is full (and text larger than the buffer directly). */
  async add(text: string): Promise<void> {
    if (this.tryAdd(text)) return;
    await this.flush();
    if (this.tryAdd(text)) return;
    const bytes = Buffer.from(text);
    let offset = 0;
    while (offset < bytes.length) offset += (await this.handle.write(bytes, offset, bytes.length - offset)).bytesWritten;
    this.written += bytes.length;
  }

  /**
   * Adds the JSON of each item on a line of its own, `,` after every line but the last: the body of a JSON
   * array laid out one element per line (the document's users, a journal commit's users).
   */
  async addJsonLines(items: readonly unknown[]): Promise<void> {
    for (let i = 0; i < items.length; i++) {
      // Separate pieces, not `json + ',\n'`: the joined string would be a copy of every item's text.
      const text = JSON.stringify(items[i]);
      if (!this.tryAdd(text)) await this.add(text);
      const end = i === items.length - 1 ? '\n' : ',\n';
      if (!this.tryAdd(end)) await this.add(end);
    }
  }

  /** Writes what is gathered. */
  async flush(): Promise<void> {
    if (this.used === 0) return;
    let offset = 0;
    // A write may take less than asked for (a signal, a full pipe); the rest goes in the next call.
    while (offset < this.used) offset += (await this.handle.write(this.out, offset, this.used - offset)).bytesWritten;
    this.written += this.used;
    this.used = 0;
  }
}
