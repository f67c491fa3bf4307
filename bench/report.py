#!/usr/bin/env python3
"""Build the comparison table from one run of bench/compare.sh.

    python3 bench/report.py WORK_DIR

reads WORK_DIR/wrk/<scenario>.<server>.txt (wrk --latency outputs) and WORK_DIR/results.tsv
(`key<TAB>value` lines the script wrote: curl status checks, upload and sha256sum timings, RSS
samples) and prints the table. Units: MB = 1,000,000 bytes (wrk's binary KB/MB/GB are
converted), latencies in ms.
"""

import glob
import os
import re
import sys

UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def parse_wrk(path):
    """Requests/sec, MB/s, p50/p99 (ms), and any problems wrk reported."""
    r = {"rps": None, "mbps": None, "p50": None, "p99": None, "requests": None, "problems": []}
    if not os.path.exists(path):
        r["problems"].append("no wrk output")
        return r
    text = open(path, encoding="utf-8", errors="replace").read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", text)
    if m:
        r["mbps"] = float(m.group(1)) * UNITS_BYTES[m.group(2)] / 1e6
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+" + pct + r"(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            r[key] = float(m.group(1)) * UNITS_MS[m.group(2)]
    m = re.search(r"(\d+) requests in", text)
    if m:
        r["requests"] = int(m.group(1))
        if r["requests"] == 0:
            r["problems"].append("0 requests")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["problems"].append(f"{m.group(1)} non-2xx/3xx")
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        names = ("connect", "read", "write", "timeout")
        errs = [f"{n} {v}" for n, v in zip(names, m.groups()) if int(v)]
        if errs:
            r["problems"].append("socket errors: " + ", ".join(errs))
    if r["rps"] is None:
        r["problems"].append("unparsable wrk output")
    return r


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def parse_rounds(work, scenario, server):
    """Every round's wrk output for one scenario and server, in round order."""
    paths = glob.glob(os.path.join(work, "wrk", f"{scenario}.{server}.r*.txt"))
    paths.sort(key=lambda p: int(re.search(r"\.r(\d+)\.txt$", p).group(1)))
    return [parse_wrk(p) for p in paths] or [parse_wrk(os.path.join(work, "wrk", f"{scenario}.{server}.r1.txt"))]


def merge_rounds(runs):
    """Medians of the rounds' figures; every round's problems."""
    out = {k: median(r[k] for r in runs) for k in ("rps", "mbps", "p50", "p99")}
    out["problems"] = sorted({p for r in runs for p in r["problems"]})
    out["runs"] = runs
    return out


def load_results(path):
    res = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            line = line.rstrip("\n")
            if "\t" in line:
                k, v = line.split("\t", 1)
                res[k] = v
    return res


def fmt_num(v, digits=None):
    if v is None:
        return "n/a"
    if digits is None:
        digits = 0 if abs(v) >= 1000 else (1 if abs(v) >= 10 else 2)
    return f"{v:,.{digits}f}"


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main():
    if len(sys.argv) != 2:
        print("usage: report.py WORK_DIR", file=sys.stderr)
        return 2
    work = sys.argv[1]
    res = load_results(os.path.join(work, "results.tsv"))
    rows = []
    notes = []
    caveats = []

    def cpu(scenario, server):
        """(server process CPU %, server core busy %, load generator core busy %) during the
        measured run."""
        v = res.get(f"cpu.{scenario}.{server}")
        try:
            proc, srv, cli = (int(x) for x in v.split())
        except (AttributeError, ValueError):
            return None
        return proc, srv, cli

    def cpu_cell(c):
        return f"{c[1]}/{c[2]}" if c else "-"

    def status_problems(scenario, servers):
        out = {}
        want = res.get(f"expect.{scenario}")
        for s in servers:
            got = res.get(f"check.{scenario}.{s}")
            p = []
            if want and got != want:
                p.append(f"curl got {got}, want {want}")
            out[s] = p
        return out

    def wrk_row(scenario, label, metric, ref, mo, target_ratio, p99_factor=None, ref_name="nginx"):
        ra, rb = parse_rounds(work, scenario, ref), parse_rounds(work, scenario, mo)
        a, b = merge_rounds(ra), merge_rounds(rb)
        st = status_problems(scenario, (ref, mo))
        key = "mbps" if metric == "MB/s" else "rps"
        # Rounds pair up in time: the ratio is the median of the per-round ratios.
        per_round = [ratio(y[key], x[key]) for x, y in zip(ra, rb)]
        rt = median(per_round)
        if target_ratio is None:
            met = None
            target = "(no target)"
        else:
            met = rt is not None and rt >= target_ratio
            target = f"ratio >= {target_ratio:g}"
        if p99_factor is not None:
            target += f", p99 <= {p99_factor:g}x"
            met = met and b["p99"] is not None and a["p99"] is not None and b["p99"] <= p99_factor * a["p99"]
        flags = [f"{ref_name}: {p}" for p in a["problems"] + st[ref]]
        flags += [f"mo: {p}" for p in b["problems"] + st[mo]]
        ca, cb = cpu(scenario, ref), cpu(scenario, mo)
        for name, c in ((ref_name, ca), ("media-origin" if mo == "mo" else f"media-origin on {mo}", cb)):
            if c and c[2] >= 90 and c[1] < 85:
                caveats.append(
                    f"{label}, {name}: wrk's core was {c[2]}% busy while the server's core was"
                    f" {c[1]}% busy: the load generator is the limit here, not the server"
                )
        rows.append({
            "scenario": label,
            "metric": metric,
            "cpur": cpu_cell(ca),
            "cpum": cpu_cell(cb),
            "ref": fmt_num(a[key]),
            "mo": fmt_num(b[key]),
            "ratio": fmt_num(rt, 2) if rt is not None else "n/a",
            "p50r": fmt_ms(a["p50"]),
            "p50m": fmt_ms(b["p50"]),
            "p99r": fmt_ms(a["p99"]),
            "p99m": fmt_ms(b["p99"]),
            "target": target,
            "met": ("-" if met is None else "yes" if met else "NO") + (" (!)" if flags else ""),
            "flags": flags,
        })
        if len(per_round) > 1:
            notes.append(
                f"{label}: per-round ratios "
                + ", ".join(fmt_num(x, 2) if x is not None else "n/a" for x in per_round)
            )
        mo_name = "media-origin" if mo == "mo" else f"media-origin on {mo}"
        extra = []
        if metric != "MB/s" and a["mbps"] is not None and b["mbps"] is not None:
            extra.append(f"transfer {fmt_num(a['mbps'])} MB/s ({ref_name}) vs {fmt_num(b['mbps'])} MB/s ({mo_name})")
        if metric == "MB/s" and a["rps"] is not None and b["rps"] is not None:
            extra.append(f"{fmt_num(a['rps'])} req/s ({ref_name}) vs {fmt_num(b['rps'])} req/s ({mo_name})")
        if ca and cb:
            extra.append(f"server process CPU {ca[0]}% ({ref_name}) vs {cb[0]}% ({mo_name})")
        if extra:
            notes.append(f"{label}: " + "; ".join(extra))

    # Issue 18: every serving ratio at least 0.9 (aiming at 1.0).
    wrk_row("small", "1 small GET 48 KB jpg (200)", "req/s", "nginx", "mo", 0.9, p99_factor=1.5)
    wrk_row("small200", "1b same, 200 connections", "req/s", "nginx", "mo", 0.9, p99_factor=1.5)
    wrk_row("cond304", "2 conditional GET (304)", "req/s", "nginx", "mo", 0.9)
    wrk_row("range", "3 Range 1 MB of video (206)", "req/s", "nginx", "mo", 0.9)
    wrk_row("video", "4 GET 16 MB video (200)", "MB/s", "nginx", "mo", 0.9)

    for label, name in (("16 MB mp4", "video"), ("100 MB pdf", "pdf")):
        size = float(res.get(f"ingest.{name}.bytes", "0") or 0)
        mo_s = res.get(f"ingest.{name}.mo_best_s")
        sha_s = res.get(f"ingest.{name}.sha_best_s")
        mo_rate = size / float(mo_s) / 1e6 if mo_s else None
        sha_rate = size / float(sha_s) / 1e6 if sha_s else None
        rt = ratio(mo_rate, sha_rate)
        ossl_s = res.get(f"ingest.{name}.openssl_best_s")
        if ossl_s and mo_rate:
            ossl_rate = size / float(ossl_s) / 1e6
            notes.append(
                f"upload ingest {label}: for reference, openssl dgst -sha256 hashes it at"
                f" {fmt_num(ossl_rate)} MB/s (media-origin at {ratio(mo_rate, ossl_rate):.2f}x that)"
            )
        flags = []
        codes = res.get(f"ingest.{name}.codes", "")
        bad = [c for c in codes.split(",") if c and c not in ("200", "201")]
        if bad or not codes:
            flags.append(f"mo: upload statuses {codes or 'none'}")
        rows.append({
            "scenario": f"5 upload ingest {label}",
            "metric": "MB/s",
            "ref": fmt_num(sha_rate) + " sha",
            "mo": fmt_num(mo_rate),
            "ratio": fmt_num(rt, 2) if rt is not None else "n/a",
            "p50r": f"{float(sha_s):.3f}s" if sha_s else "-",
            "p50m": f"{float(mo_s):.3f}s" if mo_s else "-",
            "p99r": "",
            "p99m": "",
            "cpur": "",
            "cpum": "",
            "target": "ratio >= 0.5",
            "met": ("yes" if rt is not None and rt >= 0.5 else "NO") + (" (!)" if flags else ""),
            "flags": flags,
        })

    for label, name in (("20 x 100 MB downloads", "download"), ("one 100 MB upload", "upload")):
        vals = [res.get(f"rss.{name}.sampled_kb"), res.get(f"rss.{name}.hwm_kb")]
        vals = [int(v) * 1024 / 1e6 for v in vals if v]
        peak = max(vals) if vals else None
        flags = []
        if res.get(f"rss.{name}.ok") not in (None, "yes"):
            flags.append("mo: " + res.get(f"rss.{name}.ok"))
        rows.append({
            "scenario": f"6 peak RSS, {label}",
            "metric": "MB",
            "ref": "-",
            "mo": fmt_num(peak, 1),
            "ratio": "-",
            "p50r": "",
            "p50m": "",
            "p99r": "",
            "p99m": "",
            "cpur": "",
            "cpum": "",
            "target": "<= 100 MB",
            "met": ("yes" if peak is not None and peak <= 100 else "NO") + (" (!)" if flags else ""),
            "flags": flags,
        })
        s, h = res.get(f"rss.{name}.sampled_kb"), res.get(f"rss.{name}.hwm_kb")
        notes.append(
            f"peak RSS, {label}: sampled VmRSS max {fmt_num(int(s) * 1024 / 1e6, 1) if s else 'n/a'} MB,"
            f" VmHWM {fmt_num(int(h) * 1024 / 1e6, 1) if h else 'n/a'} MB"
            + (f" (idle before: {fmt_num(int(res['rss.idle_kb']) * 1024 / 1e6, 1)} MB)" if res.get("rss.idle_kb") and name == "download" else "")
        )

    wrk_row("s3small", "7 small GET, S3 vs local", "req/s", "local", "s3", 0.8, ref_name="media-origin local")
    if res.get("s3server.ticks") is not None and res.get("s3server.requests"):
        notes.append(
            f"7 small GET, S3: the S3 server used {int(res['s3server.ticks']) / int(res.get('clk_tck', '100')):.2f} s of CPU"
            f" over the warm-up and measured run ({res['s3server.requests']} requests answered by media-origin):"
            " near zero means media-origin answered from memory, not from S3"
        )
    rows[-1]["ref"] += " loc"
    rows[-1]["mo"] += " s3"
    wrk_row("s3small", "7b same, S3 without blob memory", "req/s", "local", "s3nc", None, ref_name="media-origin local")
    rows[-1]["ref"] += " loc"
    rows[-1]["mo"] += " s3"

    headers = [
        ("scenario", "scenario"), ("metric", "metric"), ("ref", "nginx/ref"), ("mo", "media-origin"),
        ("ratio", "ratio mo/ref"), ("p50r", "p50 ref"), ("p50m", "p50 mo"), ("p99r", "p99 ref"),
        ("p99m", "p99 mo"), ("cpur", "cpu ref"), ("cpum", "cpu mo"), ("target", "target"), ("met", "met?"),
    ]
    widths = {k: max(len(t), *(len(r[k]) for r in rows)) for k, t in headers}
    right = {"ref", "mo", "ratio", "p50r", "p50m", "p99r", "p99m", "cpur", "cpum"}

    def line(cells):
        return " | ".join((cells[k].rjust(widths[k]) if k in right else cells[k].ljust(widths[k])) for k, _ in headers)

    out = [line({k: t for k, t in headers}), "-+-".join("-" * widths[k] for k, _ in headers)]
    out += [line(r) for r in rows]
    out.append("")
    out.append("ref = nginx for 1-4; sha256sum on the same file for 5 (p50 columns: best time of 3);")
    out.append("media-origin on local disk for 7. Latencies in ms; MB = 1,000,000 bytes.")
    out.append("cpu = how busy the servers' core / wrk's core was during the measured run, in % (whole")
    out.append("cores: includes kernel network work, and anything else running on the machine).")
    flagged = [(r["scenario"], f) for r in rows for f in r["flags"]]
    if flagged:
        out.append("")
        out.append("(!) problems seen:")
        out += [f"  {s}: {f}" for s, f in flagged]
    if res.get("headers.diff"):
        out.append("")
        out.append("header differences nginx vs media-origin (small.jpg): " + res["headers.diff"])
    if caveats:
        out.append("")
        out.append("caveats:")
        out += [f"  {c}" for c in caveats]
    if notes:
        out.append("")
        out += notes
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
