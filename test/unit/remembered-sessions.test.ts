import fc from 'fast-check';
import { RememberedSessions } from '../../src/ussd/remembered-sessions';

/**
 * The slots must behave exactly as the Map they replaced: the last write per key, the key written longest ago
 * forgotten first once full, an expired entry not answered, an entry that does not fit not remembered at all (nor
 * its older value). Random histories go through both.
 */
class MapModel {
  private readonly entries = new Map<string, { json: string; until: number }>();
  constructor(
    private readonly capacity: number,
    private readonly slotBytes: number,
  ) {}
  set(key: string, json: string, until: number) {
    this.entries.delete(key);
    if (Buffer.byteLength(json) > this.slotBytes) return;
    this.entries.set(key, { json, until });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
  get(key: string, now: number) {
    const e = this.entries.get(key);
    return e && e.until >= now ? e.json : undefined;
  }
  delete(key: string) {
    this.entries.delete(key);
  }
}

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g');
// ASCII, Swahili, accents, a 4-byte emoji: byte length differs from string length.
const json = fc.string({ unit: fc.constantFrom('x', '"', 'é', 'ñ', '€', '😀', 'KES 1,000\n'), maxLength: 24 });
const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key, json, until: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('get' as const), key, now: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('delete' as const), key }),
);

test('random histories: the slots answer every read as the Map model does', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 8, max: 40 }), fc.array(op, { maxLength: 80 }), (capacity, slotBytes, ops) => {
      const slots = new RememberedSessions(capacity, slotBytes);
      const model = new MapModel(capacity, slotBytes);
      for (const o of ops) {
        if (o.kind === 'set') {
          slots.set(o.key, o.json, o.until);
          model.set(o.key, o.json, o.until);
        } else if (o.kind === 'delete') {
          slots.delete(o.key);
          model.delete(o.key);
        } else {
          expect(slots.get(o.key, o.now)).toBe(model.get(o.key, o.now));
        }
      }
      for (const k of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) expect(slots.get(k, 0)).toBe(model.get(k, 0));
    }),
    { numRuns: 2_000 },
  );
});

test('a session too long for a slot is not remembered, and neither is the value it replaced', () => {
  const slots = new RememberedSessions(4, 16);
  slots.set('s', '{"rev":1}', 100);
  expect(slots.get('s', 0)).toBe('{"rev":1}');
  slots.set('s', `{"rev":2,"x":"${'é'.repeat(4)}"}`, 100); // 20 characters, 24 bytes
  expect(slots.get('s', 0)).toBeUndefined();
  expect(slots.size).toBe(0);
});

test('once full, the key written longest ago is forgotten first: a rewrite counts as new', () => {
  const slots = new RememberedSessions(2, 16);
  slots.set('a', '1', 100);
  slots.set('b', '2', 100);
  slots.set('a', '3', 100);
  slots.set('c', '4', 100);
  expect([slots.get('a', 0), slots.get('b', 0), slots.get('c', 0)]).toEqual(['3', undefined, '4']);
});
