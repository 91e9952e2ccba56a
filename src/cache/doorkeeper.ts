/** Distinct keys the doorkeeper remembers per generation (two generations: the last 32k–64k). */
const DOORKEEPER_GENERATION = 32_768;

/**
 * Which keys were offered before, so that a cache can keep a key from its
 * second offer rather than its first (TinyLFU's doorkeeper): what never
 * repeats is not kept, evicted unread and paid for in major GCs (see
 * bench/RESULTS.md). The response cache asks it of every response; L1 asks it
 * once it is full. Keys are held as 30-bit hashes in two generations; a
 * collision only keeps something one offer early.
 */
export class Doorkeeper {
  private current = new Set<number>();
  private previous = new Set<number>();

  constructor(private readonly generation = DOORKEEPER_GENERATION) {}

  /** Whether the key was asked before; remembers it either way. */
  seen(key: string): boolean {
    const hash = fnv1a(key);
    if (this.current.has(hash)) return true;
    const before = this.previous.has(hash);
    if (this.current.size >= this.generation) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(hash);
    return before;
  }
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  // 30 bits: a small integer V8 keeps in the Set as is; 32 would put half of them on the heap as numbers.
  return hash & 0x3fffffff;
}
