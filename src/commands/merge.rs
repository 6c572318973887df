//! `report merge FILE...`: join the JSON reports of a sharded run, then print and write its
//! views as a run does.

use super::{check_output_paths, emit, OutputFiles};
use crate::cli::MergeArgs;
use crate::exit::{ExitStatus, Fatal};
use crate::report::merge::merge_files;

pub fn run(args: &MergeArgs) -> Result<ExitStatus, Fatal> {
    let files = OutputFiles {
        report: args.report.as_deref(),
        junit: args.junit.as_deref(),
        html: args.html.as_deref(),
    };
    check_output_paths(files, None)?;
    let merged = merge_files(&args.files).map_err(|e| Fatal::Input(e.into()))?;
    // The shards' own exit codes tell pending changes and failures; a merge that could write
    // its files exits 0.
    if emit(&merged, args.output.into(), args.all, files) {
        Ok(ExitStatus::Success)
    } else {
        Ok(ExitStatus::Failure)
    }
}
