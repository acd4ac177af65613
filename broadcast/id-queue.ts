/** A FIFO of connection ids, kept as the listing's pages so that buffering a page does not copy it id by id. */
export class IdQueue {
  private pages: string[][] = [];
  private offset = 0;
  count = 0;

  push(ids: readonly string[]): void {
    if (ids.length === 0) return;
    this.pages.push([...ids]);
    this.count += ids.length;
  }

  /** Puts ids back at the front (ids taken and then not used). */
  unshift(ids: string[]): void {
    if (ids.length === 0) return;
    if (this.offset > 0) {
      this.pages[0] = this.pages[0]!.slice(this.offset);
      this.offset = 0;
    }
    this.pages.unshift(ids);
    this.count += ids.length;
  }

  take(n: number): string[] {
    const out: string[] = [];
    while (out.length < n && this.pages.length > 0) {
      const page = this.pages[0]!;
      const want = n - out.length;
      const end = Math.min(page.length, this.offset + want);
      for (let i = this.offset; i < end; i++) out.push(page[i]!);
      this.offset = end;
      if (this.offset === page.length) {
        this.pages.shift();
        this.offset = 0;
      }
    }
    this.count -= out.length;
    return out;
  }
}
