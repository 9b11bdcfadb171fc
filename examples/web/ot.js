// ot.js — operational transformation for plain text, the same algorithm as the server's
// collab_doc_transform() in examples/collab_doc.sql (browser and Node, no dependencies).
//
// An operation is an array of components walked from the start of the document:
//   n > 0     retain (skip over) n characters
//   "text"    insert text here
//   n < 0     delete -n characters
// Characters after the last component are retained.  Lengths count Unicode code points, as
// PostgreSQL's char_length() does, so "😀" is one character on both sides.
//
//   apply('abc', [1, 'X', -1])            -> 'aXc'
//   transform(a, b, aFirst) -> [a2, b2]   apply(apply(s, a), b2) === apply(apply(s, b), a2)
//   compose(a, b)                         apply(s, compose(a, b)) === apply(apply(s, a), b)
//
// aFirst breaks the tie when a and b insert at the same place: true puts a's text first.
// The collaborative document decides it by client id (the smaller id first; on equal ids the
// operation already committed on the server goes first), the same rule on server and client.

/** Number of code points in s. */
export function cpLength(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c < 0xd800 || c > 0xdbff || i + 1 >= s.length) n++;
        else { const d = s.charCodeAt(i + 1); if (d >= 0xdc00 && d <= 0xdfff) i++; n++; }
    }
    return n;
}

/** The UTF-16 index of code point index cp in s (for textarea selections). */
export function cpToUtf16(s, cp) {
    let i = 0;
    for (let n = 0; n < cp && i < s.length; n++) {
        const c = s.charCodeAt(i);
        i += (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) ? 2 : 1;
    }
    return i;
}

/** The code point index of UTF-16 index u in s. */
export function utf16ToCp(s, u) {
    return cpLength(s.slice(0, u));
}

const isRetain = (c) => typeof c === 'number' && c > 0;
const isDelete = (c) => typeof c === 'number' && c < 0;
const isInsert = (c) => typeof c === 'string';

/** Builds a normalised operation: merges neighbours, drops empty parts and the trailing retain. */
class Builder {
    constructor() { this.ops = []; }
    retain(n) {
        if (n <= 0) return this;
        const last = this.ops[this.ops.length - 1];
        if (isRetain(last)) this.ops[this.ops.length - 1] = last + n; else this.ops.push(n);
        return this;
    }
    insert(s) {
        if (s === '') return this;
        const last = this.ops[this.ops.length - 1];
        if (isInsert(last)) this.ops[this.ops.length - 1] = last + s; else this.ops.push(s);
        return this;
    }
    delete(n) {
        if (n <= 0) return this;
        const last = this.ops[this.ops.length - 1];
        if (isDelete(last)) this.ops[this.ops.length - 1] = last - n; else this.ops.push(-n);
        return this;
    }
    done() {
        while (this.ops.length && isRetain(this.ops[this.ops.length - 1])) this.ops.pop();
        return this.ops;
    }
}

/** Throws unless op is a well-formed operation. */
export function check(op) {
    if (!Array.isArray(op)) throw new TypeError('an operation is an array');
    for (const c of op) {
        if (!(isInsert(c) && c !== '') && !(Number.isInteger(c) && c !== 0)) {
            throw new TypeError(`bad operation component ${JSON.stringify(c)}`);
        }
    }
    return op;
}

/** An operation inserting text at code point pos. */
export function insertOp(pos, text) { return new Builder().retain(pos).insert(text).done(); }

/** An operation deleting len code points at pos. */
export function deleteOp(pos, len) { return new Builder().retain(pos).delete(len).done(); }

/** The text after op; throws if op reaches past the end of text. */
export function apply(text, op) {
    const chars = Array.from(text);
    const out = [];
    let pos = 0;
    for (const c of op) {
        if (isInsert(c)) out.push(c);
        else if (isRetain(c)) {
            if (pos + c > chars.length) throw new RangeError('operation retains past the end of the text');
            for (let i = 0; i < c; i++) out.push(chars[pos + i]);
            pos += c;
        } else if (isDelete(c)) {
            if (pos - c > chars.length) throw new RangeError('operation deletes past the end of the text');
            pos -= c;
        } else throw new TypeError(`bad operation component ${JSON.stringify(c)}`);
    }
    for (let i = pos; i < chars.length; i++) out.push(chars[i]);
    return out.join('');
}

// A cursor over the components of an operation, consuming them in pieces; past the end it
// reads as an endless retain.
class Reader {
    constructor(op) { this.op = op; this.i = 0; this.cur = op.length ? op[0] : null; }
    get ended() { return this.cur === null; }
    next() { this.i++; this.cur = this.i < this.op.length ? this.op[this.i] : null; }
    // length of the current retain or delete (Infinity past the end)
    get len() { return this.cur === null ? Infinity : Math.abs(this.cur); }
    take(n) {   // consume n of the current retain/delete
        if (this.cur === null) return;
        const left = Math.abs(this.cur) - n;
        if (left === 0) this.next(); else this.cur = this.cur > 0 ? left : -left;
    }
}

/**
 * transform(a, b, aFirst): a and b were made on the same text; returns [a2, b2] with
 * apply(apply(s, a), b2) === apply(apply(s, b), a2).  aFirst: a's insert goes before b's
 * insert at the same position.
 */
export function transform(a, b, aFirst) {
    const ra = new Reader(a), rb = new Reader(b);
    const a2 = new Builder(), b2 = new Builder();
    for (;;) {
        if (isInsert(ra.cur) && (aFirst || !isInsert(rb.cur))) {
            a2.insert(ra.cur); b2.retain(cpLength(ra.cur)); ra.next(); continue;
        }
        if (isInsert(rb.cur)) {
            a2.retain(cpLength(rb.cur)); b2.insert(rb.cur); rb.next(); continue;
        }
        if (ra.ended && rb.ended) break;
        const m = Math.min(ra.len, rb.len);
        const aRet = ra.ended || isRetain(ra.cur), bRet = rb.ended || isRetain(rb.cur);
        if (aRet && bRet) { a2.retain(m); b2.retain(m); }
        else if (!aRet && bRet) a2.delete(m);      // a deletes what b kept
        else if (aRet && !bRet) b2.delete(m);      // b deletes what a kept
        // both delete: gone for both
        ra.take(m); rb.take(m);
    }
    return [a2.done(), b2.done()];
}

/** compose(a, b): one operation with the effect of a followed by b. */
export function compose(a, b) {
    const ra = new Reader(a), rb = new Reader(b);
    const out = new Builder();
    for (;;) {
        if (isDelete(ra.cur)) { out.delete(-ra.cur); ra.next(); continue; }
        if (isInsert(rb.cur)) { out.insert(rb.cur); rb.next(); continue; }
        if (ra.ended && rb.ended) break;
        if (isInsert(ra.cur)) {
            const chars = Array.from(ra.cur);
            const m = Math.min(chars.length, rb.len);
            if (rb.ended || isRetain(rb.cur)) out.insert(chars.slice(0, m).join(''));
            // else b deletes what a inserted
            if (m === chars.length) ra.next(); else ra.cur = chars.slice(m).join('');
            rb.take(m);
            continue;
        }
        // a retains (or has ended)
        const m = Math.min(ra.len, rb.len);
        if (rb.ended || isRetain(rb.cur)) out.retain(m); else out.delete(m);
        ra.take(m); rb.take(m);
    }
    return out.done();
}

/**
 * transformIndex(op, index, before): where code point index moves when op is applied.
 * An insert exactly at index pushes it right unless before is true.
 */
export function transformIndex(op, index, before = false) {
    let pos = 0, result = index;
    for (const c of op) {
        if (pos > index || (pos === index && before)) break;
        if (isRetain(c)) pos += c;
        else if (isInsert(c)) { result += cpLength(c); }
        else {
            const n = -c;
            result -= Math.min(n, Math.max(0, index - pos));
            pos += n;
        }
    }
    return result;
}

/**
 * diff(before, after): the operation turning before into after, as one replaced range
 * (common prefix and suffix kept) — what one input event of a textarea does.
 */
export function diff(before, after) {
    const x = Array.from(before), y = Array.from(after);
    let p = 0;
    while (p < x.length && p < y.length && x[p] === y[p]) p++;
    let s = 0;
    while (s < x.length - p && s < y.length - p && x[x.length - 1 - s] === y[y.length - 1 - s]) s++;
    return new Builder().retain(p).delete(x.length - p - s).insert(y.slice(p, y.length - s).join('')).done();
}
