//! The table view of `preview`: what a policy would do to a repository's images.

use std::fmt::Write as _;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::Table;

use super::human_bytes;

pub fn render(
    images: &[ecr_lifecycle::Image],
    actions: &[ecr_lifecycle::ImageAction],
    at: jiff::Timestamp,
) -> String {
    let mut out = String::new();
    if !actions.is_empty() {
        let mut table = Table::new();
        table
            .load_style(UTF8_BORDERS_ONLY)
            .set_header(vec!["DIGEST", "TAGS", "PUSHED", "ACTION", "RULE"]);
        for a in actions {
            let img = &images[a.index];
            table.add_row(vec![
                img.digest.clone(),
                img.tags.join(","),
                img.pushed_at.to_string(),
                match a.action {
                    ecr_lifecycle::ActionType::Expire => "expire",
                    ecr_lifecycle::ActionType::Transition => "transition",
                }
                .to_string(),
                a.rule_priority.to_string(),
            ]);
        }
        let _ = writeln!(out, "{table}");
    }
    let totals = ecr_lifecycle::impact(images, actions);
    let _ = writeln!(
        out,
        "{} of {} images affected: {} expire ({}), {} transition to archive ({}); as of {at}",
        actions.len(),
        images.len(),
        totals.expiring_images,
        human_bytes(totals.expiring_bytes),
        totals.transitioning_images,
        human_bytes(totals.transitioning_bytes)
    );
    out
}
