//! Coalitions as bitsets: `words(n)` u64 per coalition over `n` players, bit q set when player
//! q is present; weighted lists of them and the enumeration of subsets.

/// u64 words of a coalition over `n` players.
pub(super) fn words(n: usize) -> usize {
    n.div_ceil(64).max(1)
}

/// Whether player `q` is in coalition `m`.
pub(super) fn has(m: &[u64], q: usize) -> bool {
    m[q >> 6] >> (q & 63) & 1 == 1
}

/// Adds player `q` to coalition `m`.
pub(super) fn put(m: &mut [u64], q: usize) {
    m[q >> 6] |= 1u64 << (q & 63);
}

/// Appends the complement of `m` within `n` players to `out`.
pub(super) fn push_complement(m: &[u64], n: usize, out: &mut Vec<u64>) {
    for (w, &v) in m.iter().enumerate() {
        let bits = n.saturating_sub(64 * w).min(64);
        let full = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        out.push(!v & full);
    }
}

/// Coalitions (flattened bitsets of `words` u64 each) with a weight each (KernelSHAP).
#[derive(Clone, Debug, Default)]
pub(super) struct Coalitions {
    /// u64 words per coalition.
    pub words: usize,
    /// The coalitions, `words` u64 each.
    pub masks: Vec<u64>,
    /// One weight per coalition.
    pub weights: Vec<f64>,
}

impl Coalitions {
    /// No coalitions yet, over `players` players.
    pub fn new(players: usize) -> Self {
        Coalitions {
            words: words(players),
            ..Default::default()
        }
    }

    /// Number of coalitions.
    pub fn len(&self) -> usize {
        self.masks.len() / self.words
    }

    /// Coalition `i`.
    pub fn get(&self, i: usize) -> &[u64] {
        &self.masks[i * self.words..(i + 1) * self.words]
    }
}

/// The binomial coefficient C(n, k) as a float (0 when k > n).
pub(super) fn binom(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Calls `f` with every subset of `offset..offset + n` of size `k` (a bitset of `words` u64),
/// always holding the players in `always`.
pub(super) fn for_each_subset(
    n: usize,
    k: usize,
    offset: usize,
    words: usize,
    always: &[usize],
    mut f: impl FnMut(&[u64]),
) {
    let mut idx: Vec<usize> = (0..k).collect();
    let mut mask = vec![0u64; words];
    loop {
        mask.iter_mut().for_each(|m| *m = 0);
        for &q in always {
            put(&mut mask, q);
        }
        for &i in &idx {
            put(&mut mask, offset + i);
        }
        f(&mask);
        // the rightmost index that can still move right
        let mut i = k;
        while i > 0 && idx[i - 1] == n - k + i - 1 {
            i -= 1;
        }
        if i == 0 {
            return;
        }
        idx[i - 1] += 1;
        for j in i..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}
