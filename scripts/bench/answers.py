#!/usr/bin/env python3
"""Per account-region timeline of one benchmark step on the synthetic server.

The scale benchmark keeps every answer of each step when ECR_FLEET_BENCH_STDERR names a
directory (`<step>.answers.tsv`). Under a write quota an account-region cannot finish before
its first write plus (writes - burst) / quota; this prints, for the account-regions that
finished last, how far each ended from that bound, and when writes started.

    python3 scripts/bench/answers.py DIR/apply.answers.tsv [--put-quota 5] [--burst 5] [--top 5]
"""

import argparse
import csv
import signal
import statistics
from collections import defaultdict

WRITES = {"ecr:PutLifecyclePolicy", "ecr:DeleteLifecyclePolicy"}


def main() -> None:
    # Piped into `head`, stop quietly as other command-line tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "answers", type=argparse.FileType("r"), help="a <step>.answers.tsv file"
    )
    parser.add_argument("--put-quota", type=float, default=5.0, help="writes per second")
    parser.add_argument("--burst", type=float, default=5.0, help="writes the bucket holds")
    parser.add_argument("--top", type=int, default=5, help="account-regions to list")
    args = parser.parse_args()

    by_target = defaultdict(list)
    with args.answers as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = {"seconds", "operation", "account", "region", "throttled"} - set(
            reader.fieldnames or []
        )
        if missing:
            parser.error(f"{f.name}: not an answers file (no column {', '.join(sorted(missing))})")
        for row in reader:
            by_target[(row["account"], row["region"])].append(row)

    rows = []
    for (account, region), answers in by_target.items():
        writes = [a for a in answers if a["operation"] in WRITES]
        if not writes:
            continue
        done = [a for a in writes if a["throttled"] == "false"]
        first = float(writes[0]["seconds"])
        last = float(writes[-1]["seconds"])
        bound = first + max(len(done) - args.burst, 0) / args.put_quota
        reads = [a for a in answers if a["operation"] not in WRITES]
        rows.append(
            {
                "target": f"{account}/{region}",
                "writes": len(done),
                "throttled": len(writes) - len(done),
                "reads": len(reads),
                "reads_throttled": sum(a["throttled"] == "true" for a in reads),
                "first_call": float(answers[0]["seconds"]),
                "first_write": first,
                "bound": bound,
                "last_write": last,
            }
        )
    if not rows:
        print("no writes in this step")
        return
    rows.sort(key=lambda r: r["last_write"], reverse=True)
    print(
        f"{'account-region':28} {'writes':>6} {'thr':>4} {'reads':>6} {'thr':>4} "
        f"{'first':>6} {'1st write':>9} {'bound':>6} {'last':>6} {'after':>6}"
    )
    for r in rows[: args.top]:
        print(
            f"{r['target']:28} {r['writes']:6} {r['throttled']:4} {r['reads']:6} "
            f"{r['reads_throttled']:4} {r['first_call']:6.2f} {r['first_write']:9.2f} "
            f"{r['bound']:6.2f} {r['last_write']:6.2f} {r['last_write'] - r['bound']:6.2f}"
        )
    firsts = [r["first_write"] for r in rows]
    print(
        f"first write: min {min(firsts):.2f} s, median {statistics.median(firsts):.2f} s, "
        f"max {max(firsts):.2f} s over {len(rows)} account-regions"
    )


if __name__ == "__main__":
    main()
