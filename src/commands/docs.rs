//! `completions` and `man`: generated from the command-line definition.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::help::{ENVIRONMENT, EXIT_CODES, MAIN_EXAMPLES};
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::exit::{ExitStatus, Fatal};

/// `ecr-fleet completions SHELL` on stdout.
pub fn run_completions(args: &CompletionsArgs) -> Result<ExitStatus, Fatal> {
    printed(completions(args, &mut std::io::stdout()))
}

/// `ecr-fleet man [--dir DIR]`.
pub fn run_man(args: &ManArgs) -> Result<ExitStatus, Fatal> {
    if let Some(dir) = args.dir.as_deref().filter(|d| !d.is_dir()) {
        return Err(Fatal::Input(anyhow::anyhow!(
            "--dir: {} is not a directory",
            dir.display()
        )));
    }
    printed(man(args, &mut std::io::stdout()))
}

/// How a printing command ends: a closed pipe (`| head`) is not a failure.
fn printed(result: std::io::Result<()>) -> Result<ExitStatus, Fatal> {
    match result {
        Ok(()) => Ok(ExitStatus::Success),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitStatus::Success),
        Err(e) => Err(Fatal::Run(e.into())),
    }
}

/// `ecr-fleet completions SHELL`.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    const SUBCMD_SEP: &str = "__subcmd__";
    // clap_complete panics when its writer fails; a buffer cannot, and a closed pipe is then
    // an error we handle.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name.clone(), &mut script);
    if args.shell == clap_complete::Shell::Bash {
        // clap_complete's bash script names a command's option cases after the binary name
        // with `-` turned into `__subcmd__`, but dispatches to it with `-` turned into `__`, so
        // for a hyphenated name like ours no option or value of a subcommand completes.
        let text = String::from_utf8_lossy(&script).replace(
            &format!("{}{SUBCMD_SEP}", name.replace('-', SUBCMD_SEP)),
            &format!("{}{SUBCMD_SEP}", name.replace('-', "__")),
        );
        script = text.into_bytes();
    }
    out.write_all(&script)?;
    out.flush()
}

/// `ecr-fleet man [--dir DIR]`: the main page on `out`, or every page into DIR.
pub fn man(args: &ManArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Display names (`ecr-fleet-plan`) and inherited global flags are set by build().
    cmd.build();
    match &args.dir {
        None => render_page(&cmd, true, out),
        Some(dir) => {
            let mut written = Vec::new();
            write_pages(&cmd, true, dir, &mut written)?;
            for path in written {
                writeln!(out, "{}", path.display())?;
            }
            Ok(())
        }
    }
}

fn write_pages(
    cmd: &clap::Command,
    top: bool,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let path = dir.join(format!("{name}.1"));
    let mut file = std::fs::File::create(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    render_page(cmd, top, &mut file)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, false, dir, written)?;
    }
    Ok(())
}

/// clap_mangen's page, with our sections in no-fill mode before VERSION, so examples keep their
/// lines (clap_mangen would fill the after-help text into one paragraph).
fn render_page(cmd: &clap::Command, top: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let mut extra = Vec::new();
    if top {
        section(&mut extra, "EXAMPLES", MAIN_EXAMPLES)?;
        section(&mut extra, "EXIT STATUS", EXIT_CODES)?;
        section(&mut extra, "ENVIRONMENT", ENVIRONMENT)?;
    } else if let Some(after) = cmd.get_after_help() {
        let text = after.to_string();
        let text = text.strip_prefix("Examples:\n").unwrap_or(&text);
        section(&mut extra, "EXAMPLES", text)?;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().after_help(None::<&str>)).render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let extra = String::from_utf8_lossy(&extra);
    let at = page.find("\n.SH VERSION").map_or(page.len(), |v| v + 1);
    out.write_all(page[..at].as_bytes())?;
    out.write_all(extra.as_bytes())?;
    out.write_all(page[at..].as_bytes())?;
    out.flush()
}

fn section(out: &mut dyn Write, heading: &str, text: &str) -> std::io::Result<()> {
    writeln!(out, ".SH \"{heading}\"\n.nf")?;
    for line in text.lines() {
        writeln!(out, "{}", roff_line(line))?;
    }
    writeln!(out, ".fi")
}

/// One line of literal text: backslashes and hyphens escaped, and a leading `.` or `'` (which
/// roff reads as a request) guarded by a zero-width character.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn output(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut buf = Vec::new();
        f(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_know_every_command_and_flag() {
        for (shell, marker) in [
            ("bash", "complete -F _ecr__fleet"),
            ("zsh", "#compdef ecr-fleet"),
            ("fish", "complete -c ecr-fleet"),
        ] {
            let cli = Cli::try_parse_from(["ecr-fleet", "completions", shell]).unwrap();
            let crate::cli::Command::Completions(args) = cli.command else {
                panic!("not completions")
            };
            let text = output(|b| completions(&args, b));
            assert!(text.contains(marker), "{shell}: {text}");
            for word in [
                "plan",
                "apply",
                "merge",
                "shard",
                "use-builtin-default",
                "junit",
            ] {
                assert!(text.contains(word), "{shell} lacks {word}");
            }
        }
    }

    #[test]
    fn man_page_has_sections_and_keeps_example_lines() {
        let page = output(|b| man(&ManArgs { dir: None }, b));
        assert!(page.contains("\n.TH ecr-fleet 1 "), "{page}");
        // Our sections come after the title and before VERSION, each once.
        let examples = page.find(".SH \"EXAMPLES\"").unwrap();
        assert!(page.find(".TH ").unwrap() < examples, "{page}");
        assert!(examples < page.find(".SH VERSION").unwrap(), "{page}");
        assert_eq!(page.matches(".SH \"EXAMPLES\"").count(), 1, "{page}");
        assert!(!page.contains(".SH EXTRA"), "{page}");
        for heading in ["NAME", "SYNOPSIS", "SUBCOMMANDS", "EXAMPLES", "EXIT STATUS"] {
            assert!(
                page.contains(&format!(".SH {heading}"))
                    || page.contains(&format!(".SH \"{heading}\"")),
                "{heading}: {page}"
            );
        }
        assert!(page.contains(".nf\n  ecr\\-fleet plan   "), "{page}");
        assert!(
            page.contains("\n  ecr\\-fleet plan \\-\\-output markdown"),
            "{page}"
        );
        assert!(page.contains(crate::VERSION), "{page}");
    }

    #[test]
    fn man_dir_writes_a_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let listing = output(|b| {
            man(
                &ManArgs {
                    dir: Some(dir.path().to_path_buf()),
                },
                b,
            )
        });
        for page in [
            "ecr-fleet.1",
            "ecr-fleet-plan.1",
            "ecr-fleet-report-merge.1",
        ] {
            let path = dir.path().join(page);
            assert!(listing.contains(&path.display().to_string()), "{listing}");
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.contains("\n.TH "), "{page}: {text}");
        }
        let merge = std::fs::read_to_string(dir.path().join("ecr-fleet-report-merge.1")).unwrap();
        assert!(merge.contains(".SH \"EXAMPLES\""), "{merge}");
    }

    #[test]
    fn roff_lines_cannot_become_requests() {
        assert_eq!(roff_line(".x"), "\\&.x");
        assert_eq!(roff_line("'a'"), "\\&'a'");
        assert_eq!(roff_line("a\\b-c"), "a\\eb\\-c");
    }
}
