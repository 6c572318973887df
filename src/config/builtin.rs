//! The safe default: a run without a config file uses the built-in default template on the
//! caller's own account. That is fine for a look (`plan`, `audit`), and it is said on stderr;
//! an unattended `apply --yes` in a folder that merely lacks its config must not write it to
//! every repository, so it refuses unless the built-in default is asked for by name.

use super::{Config, CONFIG_ENV, DEFAULT_CONFIG_FILE};

/// The flag that asks for the built-in default explicitly.
pub const USE_BUILTIN_FLAG: &str = "--use-builtin-default";

fn is_builtin(config: &Config) -> bool {
    config.path.is_none()
}

/// Checked before any AWS call: `apply --yes` needs a config file or the explicit flag, and the
/// flag makes no sense beside a config file.
pub fn check_apply(config: &Config, yes: bool, use_builtin: bool) -> anyhow::Result<()> {
    match (&config.path, use_builtin) {
        (Some(path), true) => anyhow::bail!(
            "{USE_BUILTIN_FLAG}: a config file is in use ({}); drop the flag to apply that \
             config, or run where no config file is found; nothing was changed",
            path.display()
        ),
        (None, false) if yes => anyhow::bail!(
            "apply --yes: no config file found (no --config, no {CONFIG_ENV}, no \
             {DEFAULT_CONFIG_FILE} in the working directory); refusing to write the built-in \
             default template to every repository of the current account. Pass --config FILE, \
             or {USE_BUILTIN_FLAG} to write the built-in default anyway; nothing was changed"
        ),
        _ => Ok(()),
    }
}

/// Said at the default log level once the caller is known: which account and regions the
/// built-in default is about to be used on.
pub fn warn_if_builtin(config: &Config, account_id: &str, regions: &[String]) {
    if is_builtin(config) {
        tracing::warn!(
            "no config file found (no --config, no {CONFIG_ENV}, no {DEFAULT_CONFIG_FILE} in the \
             working directory): using the built-in default template on every repository of \
             account {account_id} in region(s) {}",
            regions.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_yes_without_config_needs_the_flag() {
        let builtin = Config::builtin(vec!["us-east-1".into()]);
        let err = check_apply(&builtin, true, false).unwrap_err().to_string();
        assert!(err.contains("no config file found"), "{err}");
        assert!(err.contains(USE_BUILTIN_FLAG), "{err}");
        assert!(check_apply(&builtin, true, true).is_ok());
        // Interactive apply shows the plan and asks first.
        assert!(check_apply(&builtin, false, false).is_ok());
    }

    #[test]
    fn the_flag_beside_a_config_file_is_an_error() {
        let mut with_file = Config::builtin(vec!["us-east-1".into()]);
        with_file.path = Some("ecr-fleet.toml".into());
        let err = check_apply(&with_file, true, true).unwrap_err().to_string();
        assert!(
            err.contains("a config file is in use (ecr-fleet.toml)"),
            "{err}"
        );
        assert!(check_apply(&with_file, true, false).is_ok());
    }
}
