//! Which partition a user's events belong to. Every node and every version must agree, or
//! two nodes could deliver one user at once: the hash is spelled out here (FNV-1a, 64 bits)
//! rather than taken from the standard library, whose hasher may change and is seeded.

/// The partition of `user_key` of `source`, in `0..partitions`.
pub fn partition_of(source: &str, user_key: &str, partitions: u32) -> i32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    // 0xff never occurs in UTF-8, so ("ab", "c") and ("a", "bc") differ.
    for byte in source.bytes().chain([0xff]).chain(user_key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    let partition = hash % u64::from(partitions.max(1));
    i32::try_from(partition).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fixed_across_builds_and_spreads_users() {
        // Pinned values (computed apart, by a Python FNV-1a): a change here would move users between nodes mid-delivery.
        assert_eq!(partition_of("default", "user-1", 64), 2);
        assert_eq!(partition_of("default", "user-2", 64), 15);
        assert_ne!(
            partition_of("ab", "c", 1 << 20),
            partition_of("a", "bc", 1 << 20)
        );
        let mut counts = [0u32; 8];
        for n in 0..8000 {
            counts[partition_of("s", &format!("u{n}"), 8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
