//! What a new user sees when the AWS setup is missing: no credentials at all, or no region.
//! A few readable lines, never the SDK's debug dumps.

use std::io::{Read as _, Write as _};

use crate::support::cli::Cli;

/// Nothing listens here: a request that got this far would fail to connect.
const CLOSED: &str = "http://127.0.0.1:9";

/// The environment of a machine without any AWS setup: no `AWS_*` variable but the endpoint,
/// an empty home directory.
fn bare(home: &std::path::Path) -> Cli {
    Cli::new(CLOSED, home)
        .env("HOME", home)
        .without("AWS_ACCESS_KEY_ID")
        .without("AWS_SECRET_ACCESS_KEY")
        .without("AWS_CONFIG_FILE")
        .without("AWS_SHARED_CREDENTIALS_FILE")
}

fn assert_no_debug_dump(stderr: &str) {
    for dump in [
        "FailedToLoadToken",
        "ServiceError {",
        "SdkBody",
        "DispatchFailure",
        "Some(",
        "{ source",
    ] {
        assert!(
            !stderr.contains(dump),
            "debug output {dump:?} in:\n{stderr}"
        );
    }
}

#[test]
fn no_credentials_say_so_where_the_chain_looked_and_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    for command in [&["plan"][..], &["doctor"][..]] {
        let out = bare(home.path()).run(command);
        out.assert_code(1);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(text.contains("no AWS credentials found"), "{text}");
        for place in [
            "environment",
            "~/.aws/config",
            "web identity",
            "instance metadata",
        ] {
            assert!(text.contains(place), "{place} not named:\n{text}");
        }
        for todo in ["aws configure sso", "AWS_PROFILE", "aws sso login"] {
            assert!(text.contains(todo), "{todo} not suggested:\n{text}");
        }
        assert_no_debug_dump(&out.stderr);
        assert!(out.stderr.lines().count() <= 3, "{}", out.stderr);
    }
}

/// An instance metadata endpoint that refuses every request (HTTP 403), as one with IMDS
/// turned off does: the SDK's chain warns with a debug dump of the error.
fn refusing_metadata_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = "IMDS is disabled";
            let _ = write!(
                stream,
                "HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_refusing_instance_metadata_service_leaves_no_sdk_warning_at_the_default_level() {
    let home = tempfile::tempdir().unwrap();
    let cli = bare(home.path())
        .env("AWS_EC2_METADATA_DISABLED", "false")
        .env(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            refusing_metadata_endpoint(),
        );
    let out = cli.run(&["plan"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("no usable AWS credentials"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("aws configure sso"), "{}", out.stderr);
    assert_no_debug_dump(&out.stderr);
    assert!(!out.stderr.contains("WARN"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // The SDK's own warning is there, from -v on.
    let verbose = cli.run(&["-v", "plan"]);
    verbose.assert_code(1);
    assert!(verbose.stderr.contains("WARN"), "{}", verbose.stderr);
}

#[test]
fn no_region_says_so_and_how_to_set_one() {
    let home = tempfile::tempdir().unwrap();
    let out = Cli::new(CLOSED, home.path())
        .env("HOME", home.path())
        .without("AWS_REGION")
        .run(&["plan"]);
    out.assert_code(2);
    assert!(out.stderr.contains("no AWS region"), "{}", out.stderr);
    assert!(out.stderr.contains("AWS_REGION"), "{}", out.stderr);
    assert_no_debug_dump(&out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// `sha1("corp")`: the file name the SDK gives the cached token of the SSO session `corp`.
const CORP_TOKEN_FILE: &str = "ee0bfd2552fbd840c02cc48b6e823320543c450f.json";

#[test]
fn an_expired_sso_session_says_so_and_how_to_log_in_again() {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(aws.join("sso/cache")).unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile dev]\nsso_session = corp\nsso_account_id = 111111111111\n\
         sso_role_name = Admin\nregion = us-east-1\n\n[sso-session corp]\n\
         sso_start_url = https://example.invalid/start\nsso_region = us-east-1\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("sso/cache").join(CORP_TOKEN_FILE),
        r#"{"accessToken":"expired","expiresAt":"2020-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://example.invalid/start"}"#,
    )
    .unwrap();
    let out = bare(home.path())
        // The profile files are found in HOME, as on a laptop.
        .env("AWS_PROFILE", "dev")
        .run(&["plan"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("SSO session has expired"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("aws sso login --profile dev"),
        "{}",
        out.stderr
    );
    assert_no_debug_dump(&out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
