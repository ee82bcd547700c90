#!/usr/bin/env python3
"""table.py - prints the benchmark table from a run.sh results file.

Each line of the file is "META k=v ...", "FAIL k=v ..." or
"RESULT impl=... workload=... n=... seconds=... metric=M value=V
[metric2=M2 value2=V2] ... check=ok case=... rep=... peak_rss_kb=...".
For every row (case) and metric the table shows, per implementation, the
median over repetitions and [min-max], then troupe's ratio to the better
peer runtime, oriented so that a ratio above 1 means troupe is better.
"nng" is not a peer runtime but the raw transport baseline of the
cross-process rows: when a run has it, a column "vs nng" gives troupe's
ratio to it, oriented the same way.

Usage: table.py RESULTS_FILE
"""
import statistics
import sys

# metric -> (label, unit, higher_is_better, scale)
METRICS = {
    "ns_per_rt": ("round trip", "ns", False, 1.0),
    "us_per_rt": ("round trip", "us", False, 1.0),
    "p50_us": ("latency median", "us", False, 1.0),
    "p99_us": ("latency p99", "us", False, 1.0),
    "p50_ms": ("latency median", "ms", False, 1.0),
    "p99_ms": ("latency p99", "ms", False, 1.0),
    "msgs_per_s": ("messages/s", "M/s", True, 1e-6),
    "hops_per_s": ("hops/s", "M/s", True, 1e-6),
    "reqs_per_s": ("requests/s", "M/s", True, 1e-6),
    "spawns_per_s": ("spawns/s", "M/s", True, 1e-6),
    "restarts_per_s": ("restarts/s", "k/s", True, 1e-3),
    "burst_restarts_per_s": ("restarts/s, first 2,000", "k/s", True, 1e-3),
    "seconds": ("time", "s", False, 1.0),
    "bytes_per_actor": ("memory/actor", "B", False, 1.0),
    "peak_rss": ("peak RSS", "MB", False, 1.0 / 1024),  # from KB
}


def describe(metric):
    if metric in METRICS:
        return METRICS[metric]
    # Unknown metrics: rates are better high, everything else better low.
    return (metric, "", metric.endswith("_per_s"), 1.0)


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def parse(path):
    meta, rows, fails = {}, {}, []
    order, impl_order = [], []
    with open(path) as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            if words[0] == "META":
                meta.update(kv)
                continue
            case = kv.get("case", kv.get("workload", "?"))
            impl = kv.get("impl", "?")
            if case not in rows:
                rows[case] = {"n": kv.get("n", ""), "args": "", "values": {}}
                order.append(case)
            if impl not in impl_order:
                impl_order.append(impl)
            if words[0] == "FAIL":
                fails.append(kv)
                rows[case]["values"].setdefault(("__fail__", impl), []).append(1)
                continue
            extra = [f"{k}={kv[k]}" for k in ("p", "r", "c") if k in kv]
            rows[case]["n"] = kv.get("n", "")
            rows[case]["args"] = " ".join(extra)
            vals = rows[case]["values"]
            pairs = [(kv.get("metric"), kv.get("value"))]
            i = 2
            while f"metric{i}" in kv:
                pairs.append((kv[f"metric{i}"], kv.get(f"value{i}")))
                i += 1
            if "peak_rss_kb" in kv:
                pairs.append(("peak_rss", kv["peak_rss_kb"]))
            for m, v in pairs:
                if m is None or v is None:
                    continue
                vals.setdefault((m, impl), []).append(float(v))
    # troupe first, then the peers in the order they ran.
    impl_order.sort(key=lambda i: (i != "troupe",))
    return meta, rows, order, impl_order, fails


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    meta, rows, order, impls, fails = parse(sys.argv[1])
    # nng is a baseline (bench/nng), not a runtime: it has its own column.
    peers = [i for i in impls if i not in ("troupe", "nng")]
    has_nng = "nng" in impls

    print(f"troupe benchmarks: {meta.get('size', '?')} size, {meta.get('reps', '?')} "
          f"repetitions, {meta.get('cores', '?')} cores, {meta.get('date', '')}")
    print(f"versions: troupe {meta.get('troupe', '?')}, Erlang {meta.get('erlang', '?')} "
          f"(+S 2), CAF {meta.get('caf', '?')} (2 threads)"
          + (f", nng {meta.get('nng', '?')}" if has_nng else ""))
    print("cells: median [min-max] over the repetitions; "
          "ratio = troupe vs the better peer, >1 means troupe is better "
          "(for higher-is-better metrics troupe/peer, for lower-is-better peer/troupe)"
          + ("; vs nng = troupe vs the raw nng baseline, the same way" if has_nng else ""))
    print()

    head = (["row", "size", "metric"] + impls + (["ratio"] if peers else [])
            + (["vs nng"] if has_nng else []))
    table = [head]
    for case in order:
        r = rows[case]
        size = f"n={r['n']}" + (f" {r['args']}" if r["args"] else "")
        metrics = []
        for (m, _impl) in r["values"]:
            if m != "__fail__" and m not in metrics:
                metrics.append(m)
        metrics.sort(key=lambda m: m == "peak_rss")
        if not metrics:
            metrics = ["__fail__"]
        for k, m in enumerate(metrics):
            label, unit, higher, scale = describe(m)
            cells = [case if k == 0 else "", size if k == 0 else "",
                     f"{label} ({unit}, {'higher' if higher else 'lower'} better)"]
            medians = {}
            for impl in impls:
                v = r["values"].get((m, impl))
                nfail = len(r["values"].get(("__fail__", impl), []))
                if not v:
                    cells.append("FAIL" if nfail else "-")
                    continue
                v = [x * scale for x in v]
                med = statistics.median(v)
                medians[impl] = med
                cell = f"{fmt(med)} [{fmt(min(v))}-{fmt(max(v))}]"
                if nfail:
                    cell += f" ({nfail} failed)"
                cells.append(cell)
            if peers:
                peer_meds = [medians[p] for p in peers if p in medians]
                if "troupe" in medians and peer_meds and medians["troupe"] > 0:
                    best = max(peer_meds) if higher else min(peer_meds)
                    t = medians["troupe"]
                    ratio = t / best if higher else best / t
                    cells.append(f"{ratio:.2f}x")
                else:
                    cells.append("-")
            if has_nng:
                b, t = medians.get("nng"), medians.get("troupe")
                if b and t and m != "peak_rss":
                    cells.append(f"{(t / b if higher else b / t):.2f}x")
                else:
                    cells.append("-")
            table.append(cells)

    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for j, row in enumerate(table):
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    if fails:
        print()
        for f in fails:
            print(f"FAILED: {f.get('case')} {f.get('impl')} rep {f.get('rep')} "
                  f"(exit {f.get('rc')})")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
