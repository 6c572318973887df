//! Unused-image totals (`audit --images`): count, bytes and monthly cost per bucket.

use ecr_lifecycle::Image;
use serde::{Deserialize, Serialize};

const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Count, bytes and what they cost per month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UnusedBucket {
    pub images: u64,
    pub bytes: u64,
    pub monthly_cost_usd: f64,
}

impl UnusedBucket {
    pub fn push(&mut self, image: &Image) {
        self.images += 1;
        self.bytes += image.size_bytes;
    }

    /// Set the monthly cost from the bytes (fleet totals are priced once, not summed from
    /// rounded per-repository costs).
    pub fn price(&mut self, price_per_gb_month: f64) {
        self.monthly_cost_usd = round_cents(self.bytes as f64 / BYTES_PER_GB * price_per_gb_month);
    }

    pub fn add(&mut self, other: &UnusedBucket) {
        self.images += other.images;
        self.bytes += other.bytes;
        self.monthly_cost_usd = round_cents(self.monthly_cost_usd + other.monthly_cost_usd);
    }
}

/// Unused images of one repository (or, summed, of the fleet). An image can fall in two
/// buckets (untagged and never pulled); `total` counts each image once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Unused {
    pub never_pulled: UnusedBucket,
    pub not_pulled: UnusedBucket,
    pub untagged: UnusedBucket,
    pub total: UnusedBucket,
    /// Images that would have counted but are in use.
    pub in_use_excluded: u64,
}

impl Unused {
    pub fn add(&mut self, other: &Unused) {
        self.never_pulled.add(&other.never_pulled);
        self.not_pulled.add(&other.not_pulled);
        self.untagged.add(&other.untagged);
        self.total.add(&other.total);
        self.in_use_excluded += other.in_use_excluded;
    }

    pub fn is_empty(&self) -> bool {
        self.total.images == 0
    }

    /// Price every bucket from its bytes.
    pub fn price(&mut self, price_per_gb_month: f64) {
        for b in [
            &mut self.never_pulled,
            &mut self.not_pulled,
            &mut self.untagged,
            &mut self.total,
        ] {
            b.price(price_per_gb_month);
        }
    }
}

pub fn round_cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
