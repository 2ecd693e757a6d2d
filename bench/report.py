"""Render bench/results/*.json into docs/benchmarks.md (the full-scale run of each
benchmark when there is one, else the small one)."""

from __future__ import annotations

import json

from bench.common import RESULTS, ROOT

ORDER = [
    "rest_list",
    "growth",
    "pipeline",
    "llm_throughput",
    "websocket",
    "extraction",
    "long_documents",
    "quality",
    "auth_cost",
    "audit_cost",
]


def load() -> list[dict]:
    chosen: dict[str, dict] = {}
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        current = chosen.get(result["name"])
        if current is None or (result["scale"] == "full" and current["scale"] != "full"):
            chosen[result["name"]] = result
    return sorted(chosen.values(), key=lambda r: ORDER.index(r["name"]) if r["name"] in ORDER else 99)


def render(results: list[dict]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Every figure is a ratio against a baseline measured in the same run on the same machine, in",
        "interleaved rounds, reported as the median; absolute numbers are given for context and are never",
        "gated (these machines are shared and noisy). Run them all at a small scale with `make bench`",
        "(a few minutes), or one at full scale with `.venv/bin/python -m bench.<name> --scale full`;",
        "`python -m bench.report` rewrites this file from `bench/results/`.",
        "",
        "| benchmark | figure | value | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for fig in result["figures"]:
            value = f"{fig['value']}{(' ' + fig['unit']) if fig.get('unit') else ''}"
            lines.append(
                f"| {result['title']} ({result['scale']}) | {fig['name']} | {value} | {fig['target']} | "
                f"{'yes' if fig['met'] else '**no**'} |"
            )
    for result in results:
        m = result["machine"]
        lines += [
            "",
            f"## {result['title']}",
            "",
            f"*Scale {result['scale']}, measured {result['measured_at']} on {m['cores']} × {m['cpu']}, "
            f"{m['memory_gib']} GiB, Python {m['python']}, {m['postgresql']}, {m['redis']}, commit {m['commit']}.*",
            "",
            f"**Method.** {result['method']}",
            "",
            f"**Data.** {result['data']}",
            "",
        ]
        if result.get("details"):
            lines += ["| measurement | value |", "| --- | --- |"]
            lines += [f"| {k} | {v} |" for k, v in result["details"].items()]
            lines.append("")
        for table in result.get("tables", []):  # e.g. the summary-quality table: system × ROUGE
            lines += [f"*{table['title']}*", ""]
            lines.append("| " + " | ".join(table["columns"]) + " |")
            lines.append("|" + " --- |" * len(table["columns"]))
            lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]]
            lines.append("")
        if result.get("notes"):
            lines += [f"**Notes.** {result['notes']}", ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    (ROOT / "docs" / "benchmarks.md").write_text(render(load()))


if __name__ == "__main__":
    main()
