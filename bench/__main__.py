"""The benchmark suite: every figure beside its limit or aim, on one emulator
and one throwaway cluster. Outside the tests' pass/fail.

    .venv/bin/python -m bench

Prints a table and writes bench/results/*.json (summary.json: the table).
Needs `make install`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (bedrock_bench, citus_bench, common, comprehend_bench, emulator_bench,  # noqa: E402
                   materialize_bench, overhead_bench, s3_bench, sagemaker_bench)


def figure(name, measured, unit, limit, verdict=None):
    """limit: text such as '<= 1.25'; verdict: True (met), False (not) or None (no aim, for reference)."""
    return {"figure": name, "measured": measured, "unit": unit, "limit": limit,
            "verdict": {True: "ok", False: "MISSED", None: ""}[verdict]}


def comprehend_figures(results):
    call, batch, first = results["per_call"], results["row_by_row_vs_batch"], results["first_call"]
    plain = results["batch_mode"]
    return [
        figure("(a) detect_sentiment per call, SQL / boto3 loop", round(call["ratio"], 2), "x",
               f"<= {call['aim_ratio_at_most']} ({call['sql_ms']:.2f} vs {call['boto3_ms']:.2f} ms)",
               call["ratio"] <= call["aim_ratio_at_most"]),
        figure(f"(b) {batch['texts']} texts at {batch['latency_ms']} ms: row by row / batch",
               round(batch["speedup"], 1), "x",
               f">= {batch['aim_speedup_at_least']} ({batch['row_by_row_s']:.2f} s vs {batch['batch_s']:.3f} s)",
               batch["speedup"] >= batch["aim_speedup_at_least"]),
        figure("(b) batch_detect_sentiment / ceil(N/25) x latency", round(batch["batch_to_limit"], 2), "x",
               f"<= {batch['aim_batch_to_limit_at_most']} (limit {batch['batch_limit_s']:.2f} s, "
               f"boto3 {batch['boto3_batch_s']:.3f} s)",
               batch["batch_to_limit"] <= batch["aim_batch_to_limit_at_most"]),
        figure(f"(g) batch mode: the plain query / batch_detect_sentiment, {plain['texts']} texts",
               round(plain["to_batch_function"], 2), "x",
               f"<= {plain['aim_to_batch_function_at_most']} ({plain['plain_s']:.3f} s vs {batch['batch_s']:.3f} s)",
               plain["to_batch_function"] <= plain["aim_to_batch_function_at_most"]),
        figure("(g) batch mode: row by row / the plain query", round(plain["speedup"], 1), "x",
               f">= {plain['aim_speedup_at_least']} ({batch['row_by_row_s']:.2f} s vs {plain['plain_s']:.3f} s)",
               plain["speedup"] >= plain["aim_speedup_at_least"]),
        figure("(e) a backend's first call", round(first["first_ms"]), "ms",
               f"warm call {first['warm_ms']:.2f} ms"),
        figure("(e) a backend's first call, package preloaded", round(first["preloaded_ms"]), "ms",
               f"<= {first['aim_preloaded_ms_at_most']}", first["preloaded_ms"] <= first["aim_preloaded_ms_at_most"]),
    ]


def overhead_figures(results):
    return [figure(f"(a) layers: {layer}", round(ms, 3), "ms", "for reference")
            for layer, ms in results["ms_per_call"].items()]


def sagemaker_figures(results):
    end_to_end, direct, codec = results["end_to_end"], results["emulator_direct"], results["serialization"]
    classify = results["classify_event"]
    return [
        figure(f"(c) SageMaker batch_invoke_endpoint, {results['rows']:,} rows", round(end_to_end["rows_per_s"]),
               "rows/s", f">= {end_to_end['target_rows_per_s']:,} (boto3 direct {direct['rows_per_s']:,.0f})",
               end_to_end["rows_per_s"] >= end_to_end["target_rows_per_s"]),
        figure("(c) SageMaker CSV serialization", round(codec["us_per_field"], 3), "us/field",
               f"<= {codec['target_us_per_field']}", codec["us_per_field"] <= codec["target_us_per_field"]),
        figure(f"(g) batch mode: classify_event over {classify['rows']:,} rows", round(classify["rows_per_s"]),
               "rows/s", f">= {classify['target_rows_per_s']:,} ({classify['requests']} requests)",
               classify["rows_per_s"] >= classify["target_rows_per_s"]),
    ]


def bedrock_figures(results):
    return [figure(f"(d) Bedrock {r['case'].replace('invoke_model_get_embeddings', 'embeddings')}, "
                   f"{r['calls']} x {r['latency_ms']} ms, {r['concurrency']} lanes", r["median_s"], "s",
                   f"limit {r['limit_s']} s ({r['ratio_to_limit']}x"
                   + (f", aim <= {r['aim_ratio_at_most']}x)" if "aim_ratio_at_most" in r else ")"),
                   r["ratio_to_limit"] <= r["aim_ratio_at_most"] if "aim_ratio_at_most" in r else None)
            for r in results]


def materialize_figures(results):
    return [figure(f"(f) materialize_sentiment, {results['rows']:,} rows", round(results["rows_per_s"]), "rows/s",
                   f"boto3 direct {results['direct_boto3_rows_per_s']:,.0f} rows/s "
                   f"({results['ratio_to_direct']:.2f}x)")]


def s3_figures(results):
    """Each aws_s3 case against its aim: an export's MB/s over the lower of
    COPY's to a file and boto3's upload alone, an import's over COPY's from
    the file; the backend's and its transfer process's memory growth."""
    figures = []
    for r in results["export"] + results["import"]:
        if "aim" not in r:
            continue
        ceiling = "min(COPY, boto3)" if "ceiling_mb_per_s" in r else "COPY"
        figures.append(figure(f"(h) {r['case']}, {r['bytes'] / 1e6:.0f} MB", round(r["mb_per_s"], 1), "MB/s",
                              f">= {r['aim']} x {ceiling} ({r['to_ceiling']:.2f}x)", r["to_ceiling"] >= r["aim"]))
    exports = [r for r in results["export"] if "aim" in r]
    for name, field in (("backend", "rss_growth_kb"), ("transfer process", "transfer_rss_growth_kb")):
        figures.append(figure(f"(h) query_export_to_s3: {name} VmRSS peak growth",
                              round(max(r[field] for r in exports) / 1024, 1), "MiB", "for reference"))
    return figures


def citus_figures(results):
    figures = []
    for label in ("aws_ml preloaded", "citus only"):
        nodes = results[label]
        figures.append(figure(f"(i) sentiment query, plain table, {label}", round(nodes["plain"]["rows_per_s"]),
                              "rows/s", f"limit {results['plain_limit_rows_per_s']:,.0f}"))
        for case in citus_bench.CASES:
            r = nodes[case]
            aimed = label == "aws_ml preloaded" and case == "Citus's defaults"
            figures.append(figure(
                f"(i) ... over {results['workers']} workers, {label}, {case}", round(r["rows_per_s"]), "rows/s",
                f"limit {r['limit_rows_per_s']:,.0f}; {r['to_plain']:.2f}x plain"
                + (f", aim >= {results['aim_distributed_to_plain']}x" if aimed else ""),
                r["to_plain"] >= results["aim_distributed_to_plain"] if aimed else None))
    return figures


def emulator_figures(results):
    figures = [figure(f"emulator {name}", value, "", f">= {results['aims'][name]:,}", value >= results["aims"][name])
               for name, value in results["figures"].items()]
    figures.append(figure("emulator start to listening", results["start_to_listening_line_s"], "s", "<= 2",
                          results["start_to_listening_line_s"] <= 2))
    return figures


def main():
    figures = []
    emulator = emulator_bench.measure()
    common.write_results("emulator", emulator)
    figures += emulator_figures(emulator)
    with common.environment() as (emulator, cluster, conn):
        parts = [
            ("comprehend", lambda: comprehend_bench.measure(conn, emulator, cluster), comprehend_figures),
            ("overhead", lambda: overhead_bench.measure(conn, emulator), overhead_figures),
            ("sagemaker", lambda: sagemaker_bench.measure(conn, emulator), sagemaker_figures),
            ("bedrock", lambda: bedrock_bench.measure(conn, emulator), bedrock_figures),
            ("materialize", lambda: materialize_bench.measure(conn, emulator), materialize_figures),
            ("s3", lambda: s3_bench.measure(conn, emulator, cluster), s3_figures),
        ]
        for name, measure, figures_of in parts:
            results = measure()
            common.write_results(name, results)
            figures += figures_of(results)

    if citus_bench.citus_installed():
        citus = citus_bench.measure()
        common.write_results("citus", citus)
        figures += citus_figures(citus)
    else:
        print("(i) Citus: not measured, Citus is not installed (scripts/build-citus)")

    print(f"{'figure':60} {'measured':>10} {'unit':8} {'limit or aim':44} verdict")
    for f in figures:
        print(f"{f['figure']:60} {f['measured']:>10} {f['unit']:8} {f['limit']:44} {f['verdict']}")
    print(f"wrote {common.write_results('summary', {'figures': figures, 'machine': common.machine()})}")


if __name__ == "__main__":
    main()
