//! `doctor`: check, without writing anything, what a run needs, and print one row per check.

use super::fleet::{narrow, region_selection};
use super::{load_config, now};
use crate::aws::Aws;
use crate::cli::{DoctorArgs, PreviewFormat};
use crate::config::RegionSelection;
use crate::exit::{ExitStatus, Fatal};
use crate::fleet::doctor::{self, DoctorInput};
use crate::fleet::prepass;
use crate::fleet::probe::ProbeOptions;
use crate::report::doctor::{render_table, DoctorReport};

pub async fn run(args: &DoctorArgs) -> Result<ExitStatus, Fatal> {
    let started = now();
    let config = load_config(args.config.as_deref())?;
    let narrowing = narrow(&args.accounts, &args.regions, None)?;
    let aws = Aws::load(&config.execution).await;
    let selection = region_selection(&narrowing, &config, &aws)?;
    let default_region = aws.default_region();
    let sts_region = match &selection {
        RegionSelection::Listed(r) => r.first().map(String::as_str),
        RegionSelection::Enabled => default_region.as_deref(),
    };
    let input = DoctorInput {
        aws: &aws,
        config: &config,
        only: narrowing.accounts.as_deref(),
        selection: &selection,
        sts_region,
        // The partition is not known yet; the home region of the commercial one unless a
        // region is set.
        home: sts_region.unwrap_or(prepass::home_region("aws")),
        options: ProbeOptions {
            images: config.safety.is_enabled(),
            in_use: config.safety.in_use.clone(),
            write_access: args.write_access,
        },
    };
    let checks = doctor::run(&input).await;
    let mut report = DoctorReport::new(checks, args.write_access);
    report.started_at = started.to_string();
    report.finished_at = now().to_string();
    let text = match args.output {
        PreviewFormat::Table => render_table(&report),
        PreviewFormat::Json => report.to_json(),
    };
    print!("{text}");
    Ok(if report.failed() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
