//! `preview`: a policy evaluated offline against a repository's images.

use anyhow::{anyhow, Context};
use jiff::Timestamp;

use super::input;
use crate::cli::{PreviewArgs, PreviewFormat};
use crate::config::templates::load_template_file;
use crate::exit::{ExitStatus, Fatal};

pub fn run(args: &PreviewArgs) -> Result<ExitStatus, Fatal> {
    let name = args
        .policy
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy");
    let template = load_template_file(&args.policy, name).map_err(input)?;
    let text = std::fs::read_to_string(&args.images)
        .with_context(|| format!("{}: cannot read images", args.images.display()))
        .map_err(Fatal::Input)?;
    let images = ecr_lifecycle::parse_images(&text)
        .map_err(|e| input(anyhow!("{}: {e}", args.images.display())))?;
    let at = match &args.now {
        Some(t) => t
            .parse::<Timestamp>()
            .map_err(|e| input(anyhow!("--now: {t:?} is not an RFC 3339 time: {e}")))?,
        None => Timestamp::now(),
    };
    let actions = ecr_lifecycle::evaluate(&template.policy, &images, at);
    match args.output {
        PreviewFormat::Json => {
            let value = ecr_lifecycle::preview_json(&images, &actions);
            println!(
                "{}",
                serde_json::to_string_pretty(&value).expect("preview serializes")
            );
        }
        PreviewFormat::Table => print!("{}", crate::report::preview::render(&images, &actions, at)),
    }
    Ok(ExitStatus::Success)
}
