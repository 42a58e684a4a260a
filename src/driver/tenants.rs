//! Which organization a request is about: uniform, Zipf over a seeded
//! shuffle (so the hot tenants are not simply the lowest ids), or a size
//! tier by weight and then an organization of it.

use crate::generate::rng::{mix, SplitMix};
use crate::scenario::{Tenants, TierWeights};

/// The organizations of the estate and their properties, flat.
#[derive(Debug, Clone, Default)]
pub struct TenantSet {
    pub orgs: Vec<i64>,
    /// Properties of org i are `props[starts[i]..starts[i + 1]]`.
    pub starts: Vec<u32>,
    pub props: Vec<i64>,
}

impl TenantSet {
    /// From (organization, property) pairs sorted by organization.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (i64, i64)>) -> TenantSet {
        let mut t = TenantSet::default();
        for (org, prop) in pairs {
            if t.orgs.last() != Some(&org) {
                t.orgs.push(org);
                t.starts.push(t.props.len() as u32);
            }
            t.props.push(prop);
        }
        t.starts.push(t.props.len() as u32);
        t
    }

    pub fn len(&self) -> usize {
        self.orgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    /// The index of an organization (the set is sorted by organization).
    pub fn index_of(&self, org: i64) -> Option<usize> {
        self.orgs.binary_search(&org).ok()
    }

    pub fn properties(&self, i: usize) -> &[i64] {
        &self.props[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    /// The size tier of organization i: 0 single, 1 small (2-5), 2 medium (6-40), 3 chain.
    pub fn tier(&self, i: usize) -> usize {
        match self.properties(i).len() {
            0 | 1 => 0,
            2..=5 => 1,
            6..=40 => 2,
            _ => 3,
        }
    }
}

/// Draws organization indexes into a [`TenantSet`].
#[derive(Debug, Clone)]
pub enum Chooser {
    Uniform(usize),
    /// Cumulative weights by rank, and the organization at each rank.
    Zipf {
        cdf: Vec<f64>,
        order: Vec<u32>,
    },
    /// Cumulative tier weights (over non-empty tiers) and each tier's organizations.
    Tiers {
        cdf: Vec<f64>,
        members: Vec<Vec<u32>>,
    },
}

impl Chooser {
    pub fn new(t: &Tenants, set: &TenantSet, seed: u64) -> Chooser {
        let n = set.len();
        match t {
            Tenants::Uniform => Chooser::Uniform(n),
            Tenants::Zipf { exponent } => {
                let mut order: Vec<u32> = (0..n as u32).collect();
                // Fisher-Yates with the scenario's seed.
                let mut rng = SplitMix(mix(seed, 0x2a1f));
                for i in (1..n).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    order.swap(i, j);
                }
                let mut acc = 0.0;
                let cdf = (1..=n)
                    .map(|r| {
                        acc += 1.0 / (r as f64).powf(*exponent);
                        acc
                    })
                    .collect();
                Chooser::Zipf { cdf, order }
            }
            Tenants::Tiers { weights } => {
                let mut members = vec![Vec::new(); 4];
                for i in 0..n {
                    members[set.tier(i)].push(i as u32);
                }
                let TierWeights {
                    single,
                    small,
                    medium,
                    chain,
                } = *weights;
                let mut acc = 0.0;
                let cdf = [single, small, medium, chain]
                    .iter()
                    .zip(&members)
                    .map(|(w, m)| {
                        // A tier with no organization cannot be chosen.
                        if !m.is_empty() {
                            acc += w;
                        }
                        acc
                    })
                    .collect();
                Chooser::Tiers { cdf, members }
            }
        }
    }

    /// Why this chooser cannot draw anything from its estate, if it cannot.
    pub fn unusable(&self) -> Option<String> {
        match self {
            Chooser::Uniform(0) => Some("the estate has no organization".into()),
            Chooser::Zipf { cdf, .. } if cdf.is_empty() => {
                Some("the estate has no organization".into())
            }
            Chooser::Tiers { cdf, .. } if cdf[3] <= 0.0 => Some(
                "every tier the scenario gives weight to is empty in this estate \
                 (tiers: single 1, small 2-5, medium 6-40, chain > 40 properties)"
                    .into(),
            ),
            _ => None,
        }
    }

    /// An organization index.
    #[inline]
    pub fn pick(&self, rng: &mut SplitMix) -> usize {
        match self {
            Chooser::Uniform(n) => (rng.next_u64() % *n as u64) as usize,
            Chooser::Zipf { cdf, order } => {
                let x = rng.unit() * cdf[cdf.len() - 1];
                let r = cdf.partition_point(|&c| c <= x).min(cdf.len() - 1);
                order[r] as usize
            }
            Chooser::Tiers { cdf, members } => {
                let x = rng.unit() * cdf[3];
                let tier = cdf.partition_point(|&c| c <= x).min(3);
                let m = &members[tier];
                m[(rng.next_u64() % m.len() as u64) as usize] as usize
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1,000 organizations: 10 chains of 50, the rest one property each.
    fn set() -> TenantSet {
        let mut pairs = Vec::new();
        for org in 1..=1000i64 {
            let n = if org % 100 == 0 { 50 } else { 1 };
            for p in 0..n {
                pairs.push((org, org * 1024 + p));
            }
        }
        TenantSet::from_pairs(pairs)
    }

    #[test]
    fn the_set_keeps_each_organizations_properties() {
        let s = set();
        assert_eq!(s.len(), 1000);
        assert_eq!(
            s.properties(99),
            &(0..50).map(|p| 100 * 1024 + p).collect::<Vec<_>>()[..]
        );
        assert_eq!(s.tier(99), 3);
        assert_eq!(s.tier(0), 0);
    }

    #[test]
    fn zipf_makes_a_few_tenants_hot_and_tiers_follow_their_weights() {
        let s = set();
        let mut rng = SplitMix(1);
        let z = Chooser::new(&Tenants::Zipf { exponent: 1.1 }, &s, 9);
        let mut hits = vec![0u32; s.len()];
        for _ in 0..100_000 {
            hits[z.pick(&mut rng)] += 1;
        }
        hits.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = hits[..10].iter().sum();
        // Harmonic-like weights: the top 1% of 1,000 ranks draws about 40%.
        assert!(top10 > 30_000 && top10 < 60_000, "{top10}");

        let w = TierWeights {
            single: 1.0,
            small: 5.0,
            medium: 0.0,
            chain: 1.0,
        };
        let t = Chooser::new(&Tenants::Tiers { weights: w }, &s, 9);
        let chains = (0..20_000)
            .filter(|_| s.tier(t.pick(&mut rng)) == 3)
            .count();
        // The small tier is empty, so chains get 1 of 2 parts.
        assert!((chains as f64 / 20_000.0 - 0.5).abs() < 0.03, "{chains}");

        let only_medium = TierWeights {
            single: 0.0,
            small: 0.0,
            medium: 1.0,
            chain: 0.0,
        };
        let none = Chooser::new(
            &Tenants::Tiers {
                weights: only_medium,
            },
            &s,
            9,
        );
        assert!(none.unusable().unwrap().contains("empty"));
        assert!(t.unusable().is_none());

        let u = Chooser::new(&Tenants::Uniform, &s, 9);
        let chains = (0..20_000)
            .filter(|_| s.tier(u.pick(&mut rng)) == 3)
            .count();
        assert!((chains as f64 / 20_000.0 - 0.01).abs() < 0.005, "{chains}");
    }
}
