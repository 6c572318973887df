//! `[safety]`, `blocked`, `--allow-unsafe` and `audit --images` against moto's images.

use crate::support::aws;
use crate::support::cli::{ecr_fleet, row};
use crate::support::fixtures::{keep_one_ci_workspace, KEEP_ONE_CI};
use crate::support::moto::Moto;

fn workspace(safety: &str) -> tempfile::TempDir {
    keep_one_ci_workspace(&format!("regions = [\"us-east-1\"]\n{safety}"), "team-1/*")
}

async fn seed(url: &str) -> aws_config::SdkConfig {
    let cfg = aws::sdk_config(url, "us-east-1").await;
    aws::create_repo(&cfg, "team-1/app", &[]).await;
    for (i, tag) in ["ci-1", "ci-2", "ci-3"].iter().enumerate() {
        aws::push_image(&cfg, "team-1/app", Some(tag), &format!("app-{i}")).await;
    }
    aws::push_image(&cfg, "team-1/app", None, "app-untagged").await;
    cfg
}

#[tokio::test]
async fn protected_images_block_the_write_unless_allowed() {
    let moto = Moto::start();
    let cfg = seed(&moto.url()).await;
    let dir = workspace("[safety]\nprotected_tags = [\"ci-*\"]\n");

    let plan = ecr_fleet(&["plan", "--output", "json"], &moto.url(), dir.path());
    plan.assert_code(3);
    let report = plan.json();
    let app = row(&report, "team-1/app");
    assert_eq!(app["outcome"], "blocked");
    let protected = app["protected_images"].as_array().unwrap();
    // keep-1 of three ci- images: two would expire, both carry a protected tag.
    assert_eq!(protected.len(), 2, "{app}");
    for p in protected {
        assert_eq!(p["action"], "expire");
        assert_eq!(p["rule_priority"], 1);
        assert!(p["reason"].as_str().unwrap().contains("ci-*"), "{p}");
    }
    assert_eq!(report["summary"]["outcomes"]["blocked"], 1);
    assert_eq!(report["summary"]["api_calls"]["ecr:DescribeImages"], 1);

    // apply refuses the blocked repository and says so with exit 1.
    let apply = ecr_fleet(
        &["apply", "--yes", "--output", "json"],
        &moto.url(),
        dir.path(),
    );
    apply.assert_code(1);
    assert_eq!(row(&apply.json(), "team-1/app")["applied"], false);
    assert_eq!(aws::get_policy(&cfg, "team-1/app").await, None);

    // ...unless explicitly told to.
    let apply = ecr_fleet(
        &["apply", "--yes", "--allow-unsafe", "--output", "json"],
        &moto.url(),
        dir.path(),
    );
    apply.assert_code(0);
    let report = apply.json();
    let app = row(&report, "team-1/app");
    // Reported as the change it was, with the images it puts at risk still listed.
    assert_eq!(app["outcome"], "create");
    assert_eq!(app["applied"], true);
    assert_eq!(app["protected_images"].as_array().unwrap().len(), 2);
    assert_eq!(
        aws::get_policy(&cfg, "team-1/app").await.as_deref(),
        Some(KEEP_ONE_CI)
    );
}

#[tokio::test]
async fn unprotected_images_do_not_block() {
    let moto = Moto::start();
    seed(&moto.url()).await;
    let dir = workspace("[safety]\nprotected_tags = [\"release-*\"]\n");
    let plan = ecr_fleet(&["plan", "--output", "json"], &moto.url(), dir.path());
    plan.assert_code(3);
    assert_eq!(row(&plan.json(), "team-1/app")["outcome"], "create");
}

#[tokio::test]
async fn audit_reports_findings_and_image_impact() {
    let moto = Moto::start();
    let cfg = seed(&moto.url()).await;
    aws::create_repo(&cfg, "team-1/empty", &[]).await;
    aws::put_policy(&cfg, "team-1/empty", KEEP_ONE_CI).await;
    let dir = workspace("[audit]\nprice_per_gb_month = 0.10\n");

    let audit = ecr_fleet(
        &["audit", "--images", "--output", "json"],
        &moto.url(),
        dir.path(),
    );
    audit.assert_code(3);
    let report = audit.json();
    assert_eq!(report["command"], "audit");
    let app = row(&report, "team-1/app");
    let findings: Vec<&str> = app["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(findings, ["no_policy"]);
    assert_eq!(app["impact"]["images"], 4);
    assert_eq!(app["impact"]["expiring_images"], 2);
    assert!(app["impact"]["expiring_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        app["current_impact"]["expiring_images"], 0,
        "no policy: nothing expires today"
    );
    // A repository already on its template has no findings: the template is the choice.
    let empty = row(&report, "team-1/empty");
    assert_eq!(empty["outcome"], "unchanged");
    assert!(empty.get("findings").is_none(), "{empty}");
    let totals = &report["summary"]["impact"];
    assert_eq!(totals["repositories"], 2);
    assert_eq!(totals["expiring_images"], 2);
    assert_eq!(totals["price_per_gb_month"], 0.1);
    // Under the current policies nothing expires: app has none, empty has no images.
    assert_eq!(report["summary"]["current_impact"]["repositories"], 2);
    assert_eq!(report["summary"]["current_impact"]["expiring_images"], 0);
    assert_eq!(report["summary"]["findings"]["no_policy"], 1);
    assert_eq!(report["summary"]["repositories_with_findings"], 1);
    // The price can be given for one run.
    let priced = ecr_fleet(
        &[
            "audit",
            "--images",
            "--output",
            "json",
            "--price-per-gb-month",
            "1.5",
        ],
        &moto.url(),
        dir.path(),
    );
    priced.assert_code(3);
    assert_eq!(
        priced.json()["summary"]["impact"]["price_per_gb_month"],
        1.5
    );
    // Markdown carries the totals.
    let md = ecr_fleet(
        &["audit", "--images", "--output", "markdown"],
        &moto.url(),
        dir.path(),
    );
    md.assert_code(3);
    assert!(
        md.stdout.contains("would expire **2** images"),
        "{}",
        md.stdout
    );
}

/// Children of a multi-architecture index are not expired while the index is there, and do
/// not take places in a count rule: ecr-fleet reads the indexes to know them.
#[tokio::test]
async fn children_of_a_multi_arch_index_are_protected() {
    let moto = Moto::start();
    let cfg = aws::sdk_config(&moto.url(), "us-east-1").await;
    aws::create_repo(&cfg, "team-1/multi", &[]).await;
    let amd = aws::push_image(&cfg, "team-1/multi", None, "amd64").await;
    let arm = aws::push_image(&cfg, "team-1/multi", None, "arm64").await;
    aws::push_index(&cfg, "team-1/multi", Some("v1"), &[amd, arm]).await;
    aws::push_image(&cfg, "team-1/multi", None, "orphan-1").await;
    aws::push_image(&cfg, "team-1/multi", None, "orphan-2").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/keep-one-untagged.json"),
        r#"{"rules":[{"rulePriority":1,"description":"Keep only the newest untagged image (children of indexes are ECR's to keep)","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ecr-fleet.toml"),
        "regions = [\"us-east-1\"]\n[[match]]\ntemplate = \"keep-one-untagged\"\nnames = [\"*\"]\n",
    )
    .unwrap();
    let plan = ecr_fleet(
        &["plan", "--images", "--output", "json"],
        &moto.url(),
        dir.path(),
    );
    plan.assert_code(3);
    let report = plan.json();
    let multi = row(&report, "team-1/multi");
    assert_eq!(multi["impact"]["images"], 5);
    // Four untagged images, two of them children: only the two orphans are ranked, one stays.
    assert_eq!(multi["impact"]["expiring_images"], 1, "{multi}");
    assert_eq!(report["summary"]["api_calls"]["ecr:BatchGetImage"], 1);
}
