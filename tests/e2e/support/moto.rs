//! A private moto server (the AWS emulator from PyPI) for one test.
//!
//! Every test starts its own server on a free loopback port, so tests never see each
//! other's state (nextest runs each test in its own process anyway). The server is
//! killed when the [`Moto`] value is dropped, including when the test panics.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the `moto_server` executable; `scripts/test.sh` sets it.
pub const MOTO_SERVER_ENV: &str = "ECR_FLEET_MOTO_SERVER";

/// How long a fresh server may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Attempts at starting a server, in case another process grabs the chosen port first.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server` process, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    startup: Duration,
}

impl Moto {
    /// Starts a server on a free port of 127.0.0.1 and waits until it answers.
    ///
    /// Panics with instructions when the executable is missing, and with the exit status
    /// when the server does not come up within 30 seconds.
    pub fn start() -> Moto {
        Moto::start_program(&server_program(), &[])
    }

    /// Like [`Moto::start`], through `scripts/bench/moto_server.py`: moto's own server
    /// with its per-request routing memoized, about 1.6 times the requests per second.
    /// For benchmarks, where moto's speed would otherwise set every tool's pace.
    pub fn start_with_memoized_routing() -> Moto {
        let moto_server = server_program();
        // The interpreter of moto's own virtualenv: the script imports moto.
        let python = moto_server.with_file_name("python");
        if !python.is_file() {
            panic!(
                "no python beside {} (expected {}): the memoized-routing server runs with the \
                 interpreter of moto's virtualenv; set ECR_FLEET_BENCH_MOTO=stock to use \
                 moto_server itself",
                moto_server.display(),
                python.display()
            );
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/moto_server.py");
        Moto::start_program(&python, &[script.into_os_string()])
    }

    fn start_program(program: &Path, leading_args: &[OsString]) -> Moto {
        let began = Instant::now();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut child = Command::new(program)
                .args(leading_args)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                // moto logs every request; writing that log costs throughput we want for tests.
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
            match wait_until_ready(&mut child, port) {
                Ok(()) => {
                    return Moto {
                        child,
                        port,
                        startup: began.elapsed(),
                    }
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!("port {port}: {why}"));
                }
            }
        }
        let by_hand: Vec<String> = std::iter::once(program.as_os_str())
            .chain(leading_args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        panic!(
            "moto server did not start ({}). Run it by hand to see why: {} -H 127.0.0.1 -p 5000",
            failures.join("; "),
            by_hand.join(" ")
        );
    }

    /// Base URL of the server, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Time from spawning the process to its first answer.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Forgets every resource of every account and region (`POST /moto-api/reset`).
    pub fn reset(&self) {
        let status = http_status(self.port, "POST", "/moto-api/reset")
            .unwrap_or_else(|e| panic!("moto reset failed: {e}"));
        assert_eq!(status, 200, "moto reset answered HTTP {status}");
    }

    /// Makes moto's generated ids (account ids, ...) repeatable from now on
    /// (`POST /moto-api/seed?a=N`); call it right after [`Moto::start`].
    pub fn seed(&self, seed: u64) {
        let status = http_status(self.port, "POST", &format!("/moto-api/seed?a={seed}"))
            .unwrap_or_else(|e| panic!("moto seed failed: {e}"));
        assert_eq!(status, 200, "moto seed answered HTTP {status}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `moto_server` to run: `$ECR_FLEET_MOTO_SERVER`, else the project's `.venv`.
pub fn server_program() -> PathBuf {
    let program = match std::env::var_os(MOTO_SERVER_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"),
    };
    if !program.is_file() {
        panic!(
            "moto_server not found at {}. The end-to-end tests need the project's test \
             environment: run `bash scripts/test.sh` (it creates .venv with the pinned moto \
             and sets {MOTO_SERVER_ENV}), or point {MOTO_SERVER_ENV} at a moto_server.",
            program.display()
        );
    }
    program
}

/// A port that was free a moment ago. Another process may take it before moto binds it;
/// [`Moto::start`] then notices the early exit and tries another port.
fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind a loopback port");
    listener.local_addr().expect("no local address").port()
}

fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("moto_server exited early with {status}"));
        }
        if let Ok(200) = http_status(port, "GET", "/moto-api/") {
            // A server of another test that happened to pick the same port would answer
            // too; only accept the answer while our own process is still alive.
            return match child.try_wait().map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(status) => Err(format!("moto_server exited early with {status}")),
            };
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no answer to GET /moto-api/ within {} s",
                READY_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a bodiless HTTP/1.0 request and returns the response's status code.
fn http_status(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))
}
