//! Internet checksums for VRRP messages (RFC 1071 one's-complement sum).
//!
//! Plain functions over byte slices so the XDP program's tests can compute the same values
//! for hand-made frames. All functions return the checksum as a host-order `u16` whose
//! big-endian bytes go into octets 6..8 of the VRRP message.
//!
//! - VRRPv2 (RFC 3768 5.3.8): over the VRRP message only.
//! - VRRPv3 (RFC 9568 5.2.8): over the VRRP message plus a pseudo-header, for IPv4 as well
//!   as IPv6. keepalived 2.2.7 computes the IPv4 one with the pseudo-header too (checked
//!   against captured frames in `tests/fixtures`), so that is what interoperates.

use std::net::{Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP (RFC 9568 5.1.1.4 / 5.1.2.3).
pub const IPPROTO_VRRP: u8 = 112;

/// Offset of the checksum field inside a VRRP message (both versions).
pub const CHECKSUM_OFFSET: usize = 6;

/// Adds `data` to a running 32-bit one's-complement accumulator, 16 bits at a time in
/// network order. An odd trailing byte is padded with a zero byte (RFC 1071 4.1), so only
/// the last chunk of a message may have odd length.
pub fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc = add_carry(acc, u32::from(u16::from_be_bytes([pair[0], pair[1]])));
    }
    if let [last] = chunks.remainder() {
        acc = add_carry(acc, u32::from(u16::from_be_bytes([*last, 0])));
    }
    acc
}

/// End-around-carry addition, kept in 32 bits so no message length can overflow it.
fn add_carry(acc: u32, v: u32) -> u32 {
    let (s, carry) = acc.overflowing_add(v);
    s + u32::from(carry)
}

/// Folds an accumulator to 16 bits and complements it: the value to put in the header.
pub fn finish(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // Truncation is exact here: the loop above leaves at most 16 significant bits.
    !(acc as u16)
}

/// Sums a VRRP message as if its checksum field were zero, without copying it.
fn sum_message(acc: u32, msg: &[u8]) -> u32 {
    if msg.len() < CHECKSUM_OFFSET + 2 {
        return sum_words(acc, msg);
    }
    // CHECKSUM_OFFSET is even, so both halves stay 16-bit aligned.
    let acc = sum_words(acc, &msg[..CHECKSUM_OFFSET]);
    sum_words(acc, &msg[CHECKSUM_OFFSET + 2..])
}

/// VRRPv2 checksum (RFC 3768 5.3.8): the message alone; the checksum field is skipped.
pub fn v2(msg: &[u8]) -> u16 {
    finish(sum_message(0, msg))
}

/// VRRPv3 over IPv4 (RFC 9568 5.2.8): IPv4 pseudo-header (RFC 768 layout: source,
/// destination, zero, protocol 112, VRRP length) plus the message; checksum field skipped.
pub fn v3_ipv4(src: Ipv4Addr, dst: Ipv4Addr, msg: &[u8]) -> u16 {
    let mut acc = sum_words(0, &src.octets());
    acc = sum_words(acc, &dst.octets());
    acc = add_carry(acc, u32::from(IPPROTO_VRRP));
    // A VRRP message is at most 8 + 255 * 16 bytes, but stay total for any slice length:
    // the pseudo-header length is the low 16 bits, as a 16-bit IP length field would hold.
    acc = add_carry(acc, (msg.len() & 0xffff) as u32);
    finish(sum_message(acc, msg))
}

/// VRRPv3 over IPv6 (RFC 9568 5.2.8, pseudo-header of RFC 8200 8.1: source, destination,
/// 32-bit upper-layer length, three zero bytes, next header 112); checksum field skipped.
pub fn v3_ipv6(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut acc = sum_words(0, &src.octets());
    acc = sum_words(acc, &dst.octets());
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    acc = sum_words(acc, &len.to_be_bytes());
    acc = add_carry(acc, u32::from(IPPROTO_VRRP));
    finish(sum_message(acc, msg))
}

/// Reads the checksum stored in a message, if it is long enough to hold one.
pub fn stored(msg: &[u8]) -> Option<u16> {
    let b = msg.get(CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum_words(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum_words(0, &[0x12]), 0x1200);
        assert_eq!(sum_words(0, &[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn checksum_field_is_ignored() {
        let mut a = [0x21, 0x01, 0x64, 0x01, 0x00, 0x01, 0x00, 0x00, 192, 0, 2, 1];
        let c0 = v2(&a);
        a[6] = 0xab;
        a[7] = 0xcd;
        assert_eq!(v2(&a), c0);
    }

    #[test]
    fn short_messages_do_not_panic() {
        for n in 0..8 {
            let m = vec![0xffu8; n];
            let _ = v2(&m);
            let _ = v3_ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &m);
            let _ = v3_ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST, &m);
            assert_eq!(stored(&m), None);
        }
    }
}
