/**
 * IP addresses as bytes, the ranges a fetch may not reach, and the allowlist that lifts the refusal.
 * Every spelling of an address (decimal 2130706433, octal 0177.0.0.1, hex 0x7f.1, short 127.1,
 * IPv4-mapped ::ffff:127.0.0.1, NAT64, 6to4) is parsed to bytes first, and ranges are tested on bytes.
 */

export interface Ip {
  family: 4 | 6;
  bytes: Uint8Array;
}

/** inet_aton's grammar: 1-4 parts, each decimal, octal (leading 0) or hex (0x); the last fills the rest. */
export function parseIPv4(input: string): Uint8Array | null {
  const s = input.endsWith('.') ? input.slice(0, -1) : input;
  const parts = s.split('.');
  if (parts.length < 1 || parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0[xX][0-9a-fA-F]*$/.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) n = parseInt(p.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(p)) n = parseInt(p, 10);
    else return null;
    if (!Number.isSafeInteger(n)) return null;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255)) return null;
  const rest = 4 - nums.length;
  if (last >= 2 ** (8 * rest)) return null;
  const out = new Uint8Array(4);
  nums.forEach((n, i) => (out[i] = n));
  for (let i = 3, v = last; i >= nums.length; i--, v = Math.floor(v / 256)) out[i] = v % 256;
  return out;
}

/** RFC 4291 text (with `::`, an embedded dotted quad, brackets and a zone id allowed) -> 16 bytes. */
export function parseIPv6(input: string): Uint8Array | null {
  let s = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(':')) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    const items = h.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.includes('.')) {
        if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(it)) return null;
        const q = it.split('.').map(Number);
        if (q.some((n) => n > 255)) return null;
        out.push((q[0]! << 8) | q[1]!, (q[2]! << 8) | q[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(it)) out.push(parseInt(it, 16));
      else return null;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

export function parseIp(s: string): Ip | null {
  const v6 = parseIPv6(s);
  if (v6) return { family: 6, bytes: v6 };
  const v4 = parseIPv4(s);
  return v4 ? { family: 4, bytes: v4 } : null;
}

export function formatIp(ip: Ip): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  return g.join(':');
}

interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  bits: number;
}

function inCidr(bytes: Uint8Array, c: Cidr): boolean {
  for (let i = 0; i < c.bits; i++) {
    const mask = 0x80 >> (i % 8);
    if ((bytes[i >> 3]! & mask) !== (c.bytes[i >> 3]! & mask)) return false;
  }
  return true;
}

function cidr(text: string): Cidr {
  const [addr, bits] = text.split('/') as [string, string];
  const ip = parseIp(addr)!;
  return { ...ip, bits: Number(bits) };
}

/** IPv4 ranges no fetch may reach, with the word used in messages. */
const V4_REFUSED: Array<[Cidr, string]> = (
  [
    ['0.0.0.0/8', 'unspecified'],
    ['10.0.0.0/8', 'private'],
    ['100.64.0.0/10', 'shared (CGNAT)'],
    ['127.0.0.0/8', 'loopback'],
    ['169.254.0.0/16', 'link-local (cloud metadata)'],
    ['172.16.0.0/12', 'private'],
    ['192.0.0.0/24', 'reserved'],
    ['192.0.2.0/24', 'documentation'],
    ['192.88.99.0/24', 'reserved'],
    ['192.168.0.0/16', 'private'],
    ['198.18.0.0/15', 'benchmarking'],
    ['198.51.100.0/24', 'documentation'],
    ['203.0.113.0/24', 'documentation'],
    ['224.0.0.0/4', 'multicast'],
    ['240.0.0.0/4', 'reserved or broadcast'],
  ] as const
).map(([c, why]) => [cidr(c), why]);

/** IPv6: only global unicast (2000::/3) may be reached, minus these. */
const V6_REFUSED: Array<[Cidr, string]> = (
  [
    ['2001::/23', 'reserved (Teredo, benchmarking, ORCHID)'],
    ['2001:db8::/32', 'documentation'],
    ['3fff::/20', 'documentation'],
  ] as const
).map(([c, why]) => [cidr(c), why]);

const GLOBAL_UNICAST = cidr('2000::/3');

/** The IPv4 address an IPv6 one stands for: mapped, SIIT, NAT64 or 6to4; null when none. */
export function embeddedIPv4(b: Uint8Array): Uint8Array | null {
  const zero = (from: number, to: number) => b.subarray(from, to).every((x) => x === 0);
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12); // ::ffff:a.b.c.d
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return b.slice(12); // ::ffff:0:a.b.c.d
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return b.slice(12); // 64:ff9b::/96
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6); // 2002::/16 (6to4)
  return null;
}

/** Why an address may not be fetched from, or null when it is a public unicast address. */
export function refusedReason(ip: Ip): string | null {
  if (ip.family === 4) {
    for (const [c, why] of V4_REFUSED) if (inCidr(ip.bytes, c)) return why;
    return null;
  }
  const v4 = embeddedIPv4(ip.bytes);
  if (v4) {
    const why = refusedReason({ family: 4, bytes: v4 });
    return why === null ? null : `${why} (embedded in IPv6)`;
  }
  const b = ip.bytes;
  if (b.subarray(0, 15).every((x) => x === 0)) return b[15] === 1 ? 'loopback' : 'unspecified';
  if (b[0] === 0xff) return 'multicast';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'link-local';
  if ((b[0]! & 0xfe) === 0xfc) return 'unique-local (private)';
  if (!inCidr(b, GLOBAL_UNICAST)) return 'reserved';
  for (const [c, why] of V6_REFUSED) if (inCidr(b, c)) return why;
  return null;
}

/** Host names and address ranges that may be fetched from even though they are not public. */
export interface Allowlist {
  hosts: ReadonlySet<string>;
  cidrs: readonly Cidr[];
}

export const emptyAllowlist: Allowlist = { hosts: new Set(), cidrs: [] };

export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** The first entry of a comma-separated allowlist that is neither a host name, an address nor a CIDR. */
export function invalidAllowlistEntry(text: string): string | undefined {
  try {
    parseAllowlist(text);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

export function parseAllowlist(text: string): Allowlist {
  const hosts = new Set<string>();
  const cidrs: Cidr[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const ip = parseIp(slash >= 0 ? entry.slice(0, slash) : entry);
    if (ip) {
      const max = ip.family === 4 ? 32 : 128;
      const bits = slash >= 0 ? Number(entry.slice(slash + 1)) : max;
      if (!Number.isInteger(bits) || bits < 0 || bits > max || (slash >= 0 && !/^\d+$/.test(entry.slice(slash + 1)))) {
        throw new Error(`bad allowlist entry "${entry}": prefix length must be 0-${max}`);
      }
      cidrs.push({ ...ip, bits });
    } else if (slash < 0 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(entry)) {
      hosts.add(normalizeHost(entry));
    } else {
      throw new Error(`bad allowlist entry "${entry}": expected a host name, an IP address or a CIDR`);
    }
  }
  return { hosts, cidrs };
}

export function hostAllowed(list: Allowlist, host: string): boolean {
  return list.hosts.has(normalizeHost(host));
}

/** The IPv4 address of an IPv4-mapped IPv6 one (::ffff:a.b.c.d): the same host, not a translation. */
function mappedIPv4(b: Uint8Array): Uint8Array | null {
  return b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff ? b.slice(12) : null;
}

export function addressAllowed(list: Allowlist, ip: Ip): boolean {
  const v4 = ip.family === 6 ? mappedIPv4(ip.bytes) : null;
  return list.cidrs.some(
    (c) => (c.family === ip.family && inCidr(ip.bytes, c)) || (v4 !== null && c.family === 4 && inCidr(v4, c)),
  );
}
