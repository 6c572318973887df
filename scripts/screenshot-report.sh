#!/usr/bin/env bash
# Renders the HTML view of a demo-sized plan and audit --images report in headless Chromium.
#
#   bash scripts/screenshot-report.sh [OUT_DIR]     (default: target/html-demo)
#
# Writes OUT_DIR/plan.html, OUT_DIR/audit.html and a full-page PNG of each. The reports come
# from a fixed, made-up fleet (src/report/html.rs, test `write_demo_pages`); nothing talks to
# AWS. Needs Chromium (Debian: apt-get install chromium).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "${1:-$root/target/html-demo}")"
mkdir -p "$out"

chromium="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$chromium" ]]; then
    echo "screenshot-report.sh: chromium not found (Debian: apt-get install chromium)" >&2
    exit 2
fi

cd "$root"
ECR_FLEET_HTML_DEMO_DIR="$out" cargo test --quiet --lib report::html::tests::write_demo_pages \
    -- --ignored --exact >/dev/null

for page in plan audit; do
    # --no-sandbox: containers and CI runners often run as root, where the sandbox cannot start.
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size="${WIDTH:-1280},${HEIGHT:-2400}" \
        --screenshot="$out/$page.png" "file://$out/$page.html" 2>/dev/null
    echo "$out/$page.png"
done
