/**
 * `{ ...base, ...more }` for objects made on every request, where `more` may add properties `base` lacks.
 *
 * Node 20's V8 (11.3), once the code is optimized, gives every object made by a spread followed by a property its
 * source lacks (`{ ...ctx, t }`, `{ ...data, amountKes }`) a hidden class of its own. Each such object then costs a new
 * Map in the old generation, and it survives young-generation GCs: under USSD load that was most of what the web
 * process promoted, and so most of its heap growth (bench/ANALYSIS.md, section 6). A spread that only overrides
 * properties the source has keeps one hidden class, and so does Object.assign onto a fresh object.
 * test/unit/hidden-classes.test.ts holds the menu's objects to it.
 *
 * Unlike a spread, Object.assign runs the `__proto__` setter for an own `__proto__` key: only for objects whose keys
 * are written in the code, never for keys that come from input.
 */
export function merged<A extends object, B extends object>(base: A, more: B): Omit<A, keyof B> & B {
  return Object.assign({}, base, more);
}
