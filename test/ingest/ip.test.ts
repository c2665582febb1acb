import { describe, expect, it } from 'vitest';
import { addressAllowed, formatIp, hostAllowed, parseAllowlist, parseIp, refusedReason } from '../../src/ingest/ip.ts';
import { loadEnv } from '../../src/config.ts';

const reason = (s: string) => {
  const ip = parseIp(s);
  if (!ip) throw new Error(`${s} did not parse`);
  return refusedReason(ip);
};

describe('IP parsing', () => {
  it('reads every spelling of 127.0.0.1 as the same bytes', () => {
    for (const s of ['127.0.0.1', '2130706433', '0177.0.0.1', '0x7f.1', '0x7f000001', '017700000001', '127.1', '127.0.1', '0x7F.0.0.0x1', '127.0.0.1.']) {
      expect(formatIp(parseIp(s)!), s).toBe('127.0.0.1');
    }
  });

  it('reads IPv6 with ::, an embedded dotted quad, brackets and a zone', () => {
    expect(formatIp(parseIp('::ffff:127.0.0.1')!)).toBe('0:0:0:0:0:ffff:7f00:1');
    expect(formatIp(parseIp('[::1]')!)).toBe('0:0:0:0:0:0:0:1');
    expect(formatIp(parseIp('fe80::1%eth0')!)).toBe('fe80:0:0:0:0:0:0:1');
    expect(formatIp(parseIp('2606:4700:4700::1111')!)).toBe('2606:4700:4700:0:0:0:0:1111');
  });

  it('rejects what is not an address', () => {
    for (const s of ['', '256.0.0.1', '1.2.3.4.5', '1..2', '0x1g', '08.0.0.1', '4294967296', '1.16777216', 'example.com', ':::', '1::2::3', '12345::', '::ffff:1.2.3.256']) {
      expect(parseIp(s), s).toBeNull();
    }
  });
});

describe('refused ranges', () => {
  it('refuses loopback, private, CGNAT, link-local/metadata, unspecified, multicast, broadcast and reserved IPv4', () => {
    for (const s of [
      '127.0.0.1', '127.255.255.254', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.1.1',
      '100.64.0.1', '100.127.255.255', '169.254.169.254', '169.254.0.1', '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250',
      '255.255.255.255', '240.0.0.1', '192.0.2.1', '198.18.0.1', '198.51.100.7', '203.0.113.9', '192.0.0.8',
    ]) {
      expect(reason(s), s).not.toBeNull();
    }
  });

  it('refuses the same addresses in every other spelling', () => {
    for (const s of ['2130706433', '0177.0.0.1', '0x7f.1', '127.1', '0x7f000001', '0xa9fea9fe', '2852039166', '0251.0376.0251.0376', '012.1', '0', '0x0']) {
      expect(reason(s), s).not.toBeNull();
    }
  });

  it('refuses loopback, unique-local, link-local, multicast, unspecified and IPv4-in-IPv6 forms of refused IPv4', () => {
    for (const s of [
      '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'febf::1', 'ff02::1', 'fec0::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '::ffff:10.0.0.1', '0:0:0:0:0:ffff:c0a8:0101',
      '::ffff:0:127.0.0.1', '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '2002:a9fe:a9fe::1',
      '::127.0.0.1', '2001:db8::1', '2001::1', '100::1', '64:ff9b:1::1', '3fff::1',
    ]) {
      expect(reason(s), s).not.toBeNull();
    }
  });

  it('accepts public unicast addresses', () => {
    for (const s of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '169.255.0.1', '2606:4700:4700::1111', '2a00:1450::1', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8']) {
      expect(reason(s), s).toBeNull();
    }
  });
});

describe('allowlist', () => {
  it('matches host names (case and trailing dot ignored), addresses and CIDRs, IPv4-mapped included', () => {
    const list = parseAllowlist(' images.internal , 127.0.0.1, 10.1.0.0/16,fd00::/8 ');
    expect(hostAllowed(list, 'IMAGES.internal.')).toBe(true);
    expect(hostAllowed(list, 'other.internal')).toBe(false);
    expect(addressAllowed(list, parseIp('127.0.0.1')!)).toBe(true);
    expect(addressAllowed(list, parseIp('::ffff:127.0.0.1')!)).toBe(true);
    expect(addressAllowed(list, parseIp('127.0.0.2')!)).toBe(false);
    expect(addressAllowed(list, parseIp('10.1.200.3')!)).toBe(true);
    expect(addressAllowed(list, parseIp('10.2.0.1')!)).toBe(false);
    expect(addressAllowed(list, parseIp('fd00::5')!)).toBe(true);
    expect(addressAllowed(list, parseIp('fe80::5')!)).toBe(false);
  });

  it('refuses malformed entries, and a bad MIRA_URL_ALLOWLIST stops startup naming the variable', () => {
    for (const bad of ['10.0.0.0/33', '10.0.0.0/x', 'http://x', 'a b', '::/129', 'host/8']) expect(() => parseAllowlist(bad), bad).toThrow(/allowlist entry/);
    expect(() => loadEnv({ MIRA_URL_ALLOWLIST: 'ok.example,10.0.0.0/99' })).toThrow(/MIRA_URL_ALLOWLIST.*10\.0\.0\.0\/99/);
    expect(loadEnv({}).MIRA_URL_ALLOWLIST).toBe('');
  });
});
