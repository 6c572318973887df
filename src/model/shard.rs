//! `--shard K/N`: split the accounts of a run over N independent runs. An account belongs to
//! shard K when its 12-digit id, read as a number, is K-1 modulo N. That depends on the id
//! alone, so the split is stable while accounts join and leave, and N runs that never talk to
//! each other cover the organization exactly once.

use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("not K/N (for example 1/3: the first of three shards)")]
    Syntax,
    #[error("N must be at least 1")]
    NoShards,
    #[error("K must be between 1 and N")]
    OutOfRange,
}

impl Shard {
    pub fn new(index: u64, count: u64) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange);
        }
        Ok(Shard { index, count })
    }

    /// K, from 1.
    pub fn index(self) -> u64 {
        self.index
    }

    /// N.
    pub fn count(self) -> u64 {
        self.count
    }

    /// Whether this shard visits `account_id`. An id that is not a number (config validation
    /// rejects those) goes to the first shard, so it is still visited exactly once.
    pub fn keeps(self, account_id: &str) -> bool {
        let n = account_id.parse::<u64>().unwrap_or(0);
        n % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let (k, n) = s.trim().split_once('/').ok_or(ShardError::Syntax)?;
        let number = |t: &str| {
            let t = t.trim();
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ShardError::Syntax);
            }
            t.parse::<u64>().map_err(|_| ShardError::Syntax)
        };
        Shard::new(number(k)?, number(n)?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!((s.index(), s.count()), (2, 3));
        assert_eq!(s.to_string(), "2/3");
        assert_eq!(" 1/1 ".parse::<Shard>().unwrap(), Shard::new(1, 1).unwrap());
    }

    #[test]
    fn rejects_bad_shards_with_a_reason() {
        for (text, want) in [
            ("0/3", "K must be between 1 and N"),
            ("4/3", "K must be between 1 and N"),
            ("1/0", "N must be at least 1"),
            ("0/0", "N must be at least 1"),
            ("3", "not K/N"),
            ("a/3", "not K/N"),
            ("-1/3", "not K/N"),
            ("+1/3", "not K/N"),
            ("1/3/4", "not K/N"),
            ("", "not K/N"),
            ("1/99999999999999999999999", "not K/N"),
        ] {
            let err = text.parse::<Shard>().unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn account_id_as_a_number_modulo_n() {
        let s = |t: &str| t.parse::<Shard>().unwrap();
        // 111111111111 = 3 * 37037037037: remainder 0 of 3, so shard 1.
        assert!(s("1/3").keeps("111111111111"));
        assert!(!s("2/3").keeps("111111111111"));
        // Leading zeros are part of the 12 digits, not of the number.
        assert!(s("2/3").keeps("000000000001"));
        assert!(s("1/1").keeps("123456789012"));
    }

    #[test]
    fn every_account_lands_in_exactly_one_shard() {
        let ids: Vec<String> = (0..500u64)
            .map(|i| format!("{:012}", 100_000_000_000 + i * 7_919))
            .collect();
        for n in 1..=7u64 {
            let shards: Vec<Shard> = (1..=n).map(|k| Shard::new(k, n).unwrap()).collect();
            for id in &ids {
                let owners = shards.iter().filter(|s| s.keeps(id)).count();
                assert_eq!(owners, 1, "{id} with N={n}");
            }
        }
    }
}
