/**
 * The sessions a web process answered last, as the JSON it wrote to Redis, kept in ONE buffer allocated at start
 * (outside V8's heap): a fixed number of fixed-size slots. Once all are in use, the session written longest ago is
 * forgotten first, exactly as the Map this replaced (test/unit/remembered-sessions.test.ts runs both on random histories).
 *
 * Why not a Map of strings: every remembered session lives for seconds (the saver reads the screen), long enough for
 * V8 to promote it to the old generation, and V8 sizes the old generation at about 3-4 times what survives a full
 * GC. 20,000 sessions of ~0.5 kB on the heap were ~14 MB of live old generation, and so ~50 MB of the web process's
 * peak RSS under load. Here they are a fixed 20 MB that no GC scans; only the keys stay on the heap.
 *
 * Only a hint: the caller writes to Redis conditionally on the remembered `rev`, so an entry lost (evicted, too long
 * for a slot, or the process restarted) costs a second round trip, never a wrong answer.
 */
export class RememberedSessions {
  /** Allocated by the first write: a process (or a test) without Redis never writes. */
  private slab: Buffer | null = null;
  private readonly slotOf = new Map<string, number>();
  private readonly keyAt: Array<string | undefined>;
  private readonly untilAt: Float64Array;
  private readonly bytesAt: Uint16Array;
  /** The slots in use, from the one written longest ago (`oldest`) to the last written: a doubly linked list. */
  private readonly newerThan: Int32Array;
  private readonly olderThan: Int32Array;
  private oldest = NONE;
  private newest = NONE;
  /** Slots not in use, taken before any is evicted. */
  private readonly free: Int32Array;
  private freeCount: number;

  constructor(
    readonly capacity: number,
    readonly slotBytes = 1024,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    if (!Number.isInteger(slotBytes) || slotBytes < 1 || slotBytes > 0xffff) throw new RangeError('slotBytes must be 1 to 65535');
    this.keyAt = new Array<string | undefined>(capacity).fill(undefined);
    this.untilAt = new Float64Array(capacity);
    this.bytesAt = new Uint16Array(capacity);
    this.newerThan = new Int32Array(capacity).fill(NONE);
    this.olderThan = new Int32Array(capacity).fill(NONE);
    this.free = Int32Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
    this.freeCount = capacity;
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Remembers `json` under `key` until `until` (ms since the epoch). One that does not fit a slot is forgotten instead. */
  set(key: string, json: string, until: number): void {
    this.delete(key);
    // A UTF-16 unit needs at most 3 bytes of UTF-8: measure only when it may not fit.
    if (json.length * 3 > this.slotBytes && Buffer.byteLength(json) > this.slotBytes) return;
    this.slab ??= Buffer.allocUnsafeSlow(this.capacity * this.slotBytes);
    const slot = this.freeCount > 0 ? this.free[--this.freeCount]! : this.evictOldest();
    this.bytesAt[slot] = this.slab.write(json, slot * this.slotBytes, this.slotBytes, 'utf8');
    this.untilAt[slot] = until;
    this.keyAt[slot] = key;
    this.slotOf.set(key, slot);
    this.olderThan[slot] = this.newest;
    this.newerThan[slot] = NONE;
    if (this.newest === NONE) this.oldest = slot;
    else this.newerThan[this.newest] = slot;
    this.newest = slot;
  }

  /** The JSON remembered under `key`, unless it expired before `now`. */
  get(key: string, now: number): string | undefined {
    const slot = this.slotOf.get(key);
    if (slot === undefined || this.untilAt[slot]! < now) return undefined;
    const start = slot * this.slotBytes;
    return this.slab!.toString('utf8', start, start + this.bytesAt[slot]!);
  }

  delete(key: string): void {
    const slot = this.slotOf.get(key);
    if (slot === undefined) return;
    this.release(slot);
    this.free[this.freeCount++] = slot;
  }

  private evictOldest(): number {
    const slot = this.oldest;
    this.release(slot);
    return slot;
  }

  /** Takes a slot in use out of the map and the list. */
  private release(slot: number): void {
    this.slotOf.delete(this.keyAt[slot]!);
    this.keyAt[slot] = undefined;
    const older = this.olderThan[slot]!;
    const newer = this.newerThan[slot]!;
    if (older === NONE) this.oldest = newer;
    else this.newerThan[older] = newer;
    if (newer === NONE) this.newest = older;
    else this.olderThan[newer] = older;
  }
}

const NONE = -1;
