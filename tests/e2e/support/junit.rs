//! Reading JUnit XML the way CI report tools do: with junitparser (PyPI, installed into the
//! test virtualenv beside moto by `scripts/test.sh`), an implementation independent of the
//! crate that writes it, so a test of `--output junit` checks interoperability, not a round
//! trip through our own writer.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The virtualenv's Python: beside the `moto_server` the tests use.
pub fn venv_python() -> PathBuf {
    let moto = super::moto::server_program();
    let python = moto.with_file_name("python");
    assert!(
        python.is_file(),
        "{} not found: run `bash scripts/test.sh` to create the test virtualenv",
        python.display()
    );
    python
}

const READER: &str = r#"
import json, sys
from junitparser import JUnitXml, TestSuite
xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
def counts(x):
    return {"tests": x.tests, "failures": x.failures, "errors": x.errors, "skipped": x.skipped}
out = {"tag": xml._tag, "name": xml.name, **counts(xml), "suites": []}
for s in suites:
    cases = []
    for c in s:
        results = [{"kind": r._tag, "message": r.message, "type": r.type, "text": r.text}
                   for r in c.result]
        cases.append({"name": c.name, "classname": c.classname, "results": results})
    out["suites"].append({"name": s.name, **counts(s),
                          "properties": {p.name: p.value for p in s.properties()},
                          "cases": cases})
print(json.dumps(out))
"#;

/// `path` as junitparser reads it: `{tag, name, tests, failures, errors, skipped, suites:
/// [{name, tests, failures, errors, skipped, properties, cases: [{name, classname, results:
/// [{kind: failure|error|skipped, message, type, text}]}]}]}`. Panics with the parser's error
/// when the file is not JUnit XML it can read.
pub fn parse_junit(path: &Path) -> Value {
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(READER)
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "junitparser cannot read {}: {}\n--- file\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).expect("reader prints JSON")
}

/// The kind of a parsed test case's result: `passed`, `failure`, `error` or `skipped`.
pub fn case_kind(case: &Value) -> &str {
    case["results"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["kind"].as_str())
        .unwrap_or("passed")
}
