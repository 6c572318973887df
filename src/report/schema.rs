//! `docs/report.schema.json` is generated from the report types by `schemars`, a
//! dev-dependency: the derives are `cfg_attr(test, ...)`, so the release binary carries none
//! of it. The schema describes what a schema_version 1 reader accepts, which is what `report
//! merge` reads: fields added after the first published shape are optional there.
//!
//! Regenerate after changing a report type:
//!
//! ```text
//! ECR_FLEET_WRITE_SCHEMA=1 cargo test --lib report::schema
//! ```

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::Report;

const SCHEMA_FILE: &str = "docs/report.schema.json";

const DESCRIPTION: &str = "What `ecr-fleet plan|apply|audit|restore --output json` prints on \
stdout, what `--report FILE` writes and what `ecr-fleet report merge` reads and prints: one row \
per repository visited, the targets that could not be visited, and run totals. Fields that are \
not required are additions to the first published shape; a consumer of schema_version 1 must \
not rely on them being present. Every object the tool owns is closed (additionalProperties: \
false). Generated from the report types; do not edit by hand.";

/// The schema as the code defines it, pretty-printed with a final newline.
pub fn generate() -> String {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Report>();
    schema.insert(
        "title".into(),
        format!("ecr-fleet report, schema_version {}", super::SCHEMA_VERSION).into(),
    );
    schema.insert("description".into(), DESCRIPTION.into());
    let mut value = schema.to_value();
    unwrap_descriptions(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a schema serializes");
    text.push('\n');
    text
}

/// Doc comments wrap at 100 columns; a description is one paragraph per blank line.
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(fields) => {
            for (key, v) in fields {
                match v {
                    Value::String(s) if key == "description" => {
                        let paragraphs: Vec<String> =
                            s.split("\n\n").map(|p| p.replace('\n', " ")).collect();
                        *s = paragraphs.join("\n\n");
                    }
                    _ => unwrap_descriptions(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

#[test]
fn docs_report_schema_is_what_the_report_types_generate() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_FILE);
    let want = generate();
    if std::env::var_os("ECR_FLEET_WRITE_SCHEMA").is_some() {
        std::fs::write(&path, &want).expect("write the schema");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{SCHEMA_FILE} differs from what the report types generate; regenerate it with\n    \
         ECR_FLEET_WRITE_SCHEMA=1 cargo test --lib report::schema\nand commit the result."
    );
}
