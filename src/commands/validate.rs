//! `validate`: a config and its templates, or policy files, checked offline.

use anyhow::anyhow;

use super::input;
use crate::cli::ValidateArgs;
use crate::config::templates::load_template_file;
use crate::config::Config;
use crate::exit::{ExitStatus, Fatal};

pub fn run(args: &ValidateArgs) -> Result<ExitStatus, Fatal> {
    let mut failed = 0usize;
    if let Some(path) = &args.config {
        let config = Config::load(path).map_err(input)?;
        for w in &config.warnings {
            eprintln!("warning: {w}");
        }
        let templates: Vec<&str> = config.used_templates();
        println!(
            "{}: ok ({} [[match]] entr{}, template(s): {}; regions: {})",
            path.display(),
            config.matches.len(),
            if config.matches.len() == 1 {
                "y"
            } else {
                "ies"
            },
            templates.join(", "),
            if config.regions_enabled {
                "every enabled region".to_string()
            } else if config.regions.is_empty() {
                "from the environment".to_string()
            } else {
                config.regions.join(", ")
            }
        );
    }
    for path in &args.policy {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("policy");
        match load_template_file(path, name) {
            Ok(t) => println!("{}: ok ({} rule(s))", path.display(), t.policy.rules.len()),
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    if failed > 0 {
        return Err(input(anyhow!(
            "{failed} of {} policy file(s) invalid",
            args.policy.len()
        )));
    }
    Ok(ExitStatus::Success)
}
