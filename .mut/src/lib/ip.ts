import { BlockList, isIP } from 'node:net';

/** `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32`: the address, its family and prefix length; null when it is none of these. */
export interface IpRange {
  address: string;
  family: 'ipv4' | 'ipv6';
  prefix: number;
}

export function parseIpRange(entry: string): IpRange | null {
  const [address = '', prefixText, ...rest] = entry.trim().split('/');
  if (rest.length > 0) return null;
  const version = isIP(address);
  if (version === 0) return null;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  if (prefixText === undefined) return { address, family, prefix: max };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return null;
  return { address, family, prefix: Number(prefixText) };
}

/** A comma-separated list of addresses and CIDR ranges; the entries that are neither go in `invalid`. */
export function parseIpList(text: string): { ranges: IpRange[]; invalid: string[] } {
  const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
  const ranges: IpRange[] = [];
  const invalid: string[] = [];
  for (const entry of entries) {
    const range = parseIpRange(entry);
    if (range) ranges.push(range);
    else invalid.push(entry);
  }
  return { ranges, invalid };
}

/** Matching is node's own BlockList; this only feeds it and unwraps IPv4-mapped IPv6 (`::ffff:1.2.3.4`). */
export function ipMatcher(ranges: IpRange[]): (ip: string | undefined) => boolean {
  const list = new BlockList();
  for (const r of ranges) list.addSubnet(r.address, r.prefix, r.family);
  return (ip) => {
    if (!ip) return false;
    const plain = ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    const version = isIP(plain);
    if (version === 0) return false;
    return list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
  };
}
