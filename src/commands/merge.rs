//! `report merge FILE...`: join the JSON reports of a sharded run.

use super::check_output_paths;
use crate::cli::MergeArgs;
use crate::exit::{ExitStatus, Fatal};
use crate::report::merge::merge_files;

pub fn run(args: &MergeArgs) -> Result<ExitStatus, Fatal> {
    check_output_paths(args.report.as_deref(), None)?;
    let merged = merge_files(&args.files).map_err(|e| Fatal::Input(e.into()))?;
    let text = merged.to_json();
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a non-zero exit.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
    if let Some(path) = &args.report {
        if let Err(e) = std::fs::write(path, &text) {
            eprintln!("error: {}: cannot write report: {e}", path.display());
            return Ok(ExitStatus::Failure);
        }
    }
    Ok(ExitStatus::Success)
}
