//! Merkle trees as RFC 9162 (Certificate Transparency 2.0, section 2.1) defines them: one
//! audit record can commit to thousands of items (an import batch's consent events) by their
//! tree's root, and any one item is later proven to be among them by its index and a path of
//! about log2(n) hashes, without showing the others.
//!
//! A leaf's hash is SHA-256(0x00 ‖ data); an inner node's SHA-256(0x01 ‖ left ‖ right). A
//! tree of n > 1 leaves splits at the largest power of two below n.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new().chain_update([0]).chain_update(data).finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([1]).chain_update(left).chain_update(right).finalize().into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree whose leaves hash to `leaves`, in order (the empty tree's is the hash
/// of nothing).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` (`None` past the end): the sibling hashes from the leaf
/// up to the root.
pub fn path(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let (mut lo, mut hi, mut at) = (0, leaves.len(), index);
    let mut siblings = Vec::new();
    while hi - lo > 1 {
        let k = split(hi - lo);
        if at < k {
            siblings.push(root(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            siblings.push(root(&leaves[lo..lo + k]));
            lo += k;
            at -= k;
        }
    }
    // Collected from the root down; a proof lists them from the leaf up.
    siblings.reverse();
    Some(siblings)
}

/// The root that leaf `leaf` at `index` of a tree of `size` leaves proves with `path`
/// (RFC 9162, 2.1.3.2), or `None` when the path cannot belong to such a tree. A path can fit
/// trees of more than one size (the first leaf of 3 proves the same root as of 4 when the 4th
/// subtree hashes alike), so the size must come from what states the root.
pub fn root_from_path(leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("item {i}").as_bytes())).collect()
    }

    #[test]
    fn every_leaf_of_every_tree_size_proves_the_root_and_no_other_position_does() {
        for n in 1..=33 {
            let all = leaves(n);
            let top = root(&all);
            for i in 0..n {
                let p = path(&all, i).unwrap();
                assert_eq!(root_from_path(&all[i], i as u64, n as u64, &p), Some(top), "n={n} i={i}");
                for j in (0..n).filter(|j| *j != i) {
                    assert_ne!(root_from_path(&all[i], j as u64, n as u64, &p), Some(top), "n={n} i={i} as {j}");
                }
            }
            assert!(path(&all, n).is_none());
        }
    }

    #[test]
    fn a_changed_leaf_or_sibling_proves_another_root() {
        let all = leaves(13);
        let top = root(&all);
        let p = path(&all, 6).unwrap();
        assert_ne!(root_from_path(&leaf_hash(b"item 6 changed"), 6, 13, &p), Some(top));
        for k in 0..p.len() {
            let mut bad = p.clone();
            bad[k][0] ^= 1;
            assert_ne!(root_from_path(&all[6], 6, 13, &bad), Some(top));
        }
        assert_eq!(root_from_path(&all[6], 6, 13, &p[..p.len() - 1]), None);
    }

    /// The first leaves and root of the RFC 6962 test vectors (the certificate-transparency
    /// project's `merkle_tree_test`): leaf inputs "", 00, 10, 2021, 3031, 40414243, ...
    #[test]
    fn the_roots_of_the_certificate_transparency_test_vectors() {
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
        ];
        let all: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        let hex = |h: Hash| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(root(&all[..1])), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        assert_eq!(hex(root(&all[..2])), "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
        assert_eq!(hex(root(&all[..3])), "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77");
        assert_eq!(hex(root(&all[..8])), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
    }
}
