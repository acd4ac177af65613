/**
 * A timer as a promise that can be cancelled, so a race against a deadline (integration timeout, shutdown
 * grace) does not keep the process alive once the other side won.
 */
export function delay(ms: number): { readonly promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { promise, cancel: () => clearTimeout(timer) };
}
