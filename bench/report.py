#!/usr/bin/env python3
"""Turns bench/results.json (written by bench/run.py) into bench/RESULTS.md
and bench/chart.png. Runs in the bench virtualenv (matplotlib)."""
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "results.json")) as f:
    R = json.load(f)
S = R["scenarios"]


def f1(x):
    return "%.1f" % x


def f2(x):
    return "%.2f" % x


def mark(ok):
    return "met" if ok else "**not met**"


lines = []
add = lines.append
m = R["machine"]
add("# Benchmark results")
add("")
add("Measured by `make bench` (bench/run.py) on %s: %s, %d cores, %s GiB RAM, Linux %s; %s; %s; %s. "
    "Everything runs on this one machine over loopback: the servers use the same two cores as the client. "
    "Absolute numbers drift from run to run here; the ratios, measured side by side in one run, are what to read."
    % (R["date"], m["cpu"], m["cores"], m["memory_gib"], m["kernel"], m["nginx"], m["aria2c"], m["openssl"]))
add("")
add("MB = 10^6 bytes. *min* and *median* are over the runs of each row; CPU is user+sys of the whole "
    "process tree for the fastest run, per GiB; RSS is the largest process's peak.")
add("")

c = S["ceiling"]
speed = c["openssl_speed_mbps"]
tw = c["transport_write"]
ceiling = c.get("ceiling_mbps") or min(speed, tw["mbps_best"])
limit = "receiving and writing" if tw["mbps_best"] < speed else "single-core SHA-256"
add("## 1. Ceiling: min(single-core SHA-256, receive + write)")
add("")
add("| measure | MB/s | CPU s/GiB |")
add("|---|---:|---:|")
add("| `openssl speed -evp sha256` (1 MiB blocks): single-core SHA-256 | %s | |" % f1(speed))
add("| `openssl dgst -sha256` of the cached 2 GiB blob (best of %d) | %s | %s |" % (c["dgst"]["runs"], f1(c["dgst"]["mbps_best"]), f2(c["dgst"]["cpu_per_gib"])))
add("| transport only: nginx → `curl -o /dev/null` over loopback, no write, no hash | %s | %s |"
    % (f1(c["transport_discard"]["mbps_best"]), f2(c["transport_discard"]["cpu_per_gib"])))
add("| receive + write: nginx → `curl -o file`, no hash | %s | %s |" % (f1(tw["mbps_best"]), f2(tw["cpu_per_gib"])))
add("| **ceiling of a verified pull**: the lower of the first and the last | **%s** | |" % f1(ceiling))
add("")
add("A verified pull must both hash every byte and receive and write it. On this machine the limit is %s: "
    "SHA-256 with the CPU's SHA extensions outruns writing into the page cache, where every new page is "
    "allocated and copied into (`copy_folio_from_iter_atomic` in `perf`; on this VM its cost swings by 4× "
    "between runs). The server, the loopback TCP stack and the writes share the same two cores; CPU here is "
    "the client's only (nginx's is not counted)." % limit)
add("")
gib_back = R["machine"].get("reported_during_bench_gib")
if gib_back:
    add("Why the cost of a page-cache write swings here: this VM hands freed memory back to its host "
        "(virtio-balloon free page reporting, in 2 MiB blocks; %s GiB during this bench, as each run's 2 GiB "
        "file is deleted). The next writer into fresh page cache then takes a host page fault per page: "
        "touching 3 GiB of such memory took 5–16 s, and in a `curl -o` that took 41 s instead of 4, `perf "
        "record -a` put 64%% of all CPU in `copy_folio_from_iter_atomic`. Whichever run lands on it (Haul "
        "or a peer) pays up to 10×. The bench therefore deletes every tool's earlier output just before "
        "each run, so that each run finds the previous run's pages freshly freed: before that, in paired "
        "runs the tool that followed a `--direct-io` run (which frees no page cache) paid it every time, "
        "and Haul's median came out 2–4× `curl -o` instead of 0.8–0.9×." % f1(gib_back))
    add("")

u = S["unlimited"]
add("## 2. One 2 GiB blob over unlimited loopback, verified")
add("")
add("| tool | best s | median s | MB/s (best) | × ceiling | CPU s/GiB | peak RSS MiB |")
add("|---|---:|---:|---:|---:|---:|---:|")
for tool, r in u.items():
    add("| %s | %s | %s | %s | %s | %s | %s |" % (tool, f2(r["wall_min"]), f2(r["wall_median"]), f1(r["mbps_best"]),
                                             f2(r["mbps_best"] / ceiling), f2(r["cpu_per_gib"]), f1(r["rss_mib"])))
h = u["haul"]
peers = {k: v for k, v in u.items() if k != "haul"}
fastest_peer = min(peers.values(), key=lambda r: r["wall_min"])
add("")
add("Targets: Haul ≥ 0.90 × ceiling: %s (%s×). Faster than every peer: %s (%.2f× the fastest peer's speed). "
    "Peak RSS ≤ 64 MiB: %s (%s MiB). Single best runs; scenario 9 compares medians of paired runs."
    % (mark(h["mbps_best"] >= 0.9 * ceiling), f2(h["mbps_best"] / ceiling), mark(h["wall_min"] < fastest_peer["wall_min"]),
       fastest_peer["wall_min"] / h["wall_min"], mark(h["rss_mib"] <= 64), f1(h["rss_mib"])))
add("")

rl = S["rate_limited"]
add("## 3. Per-connection limit of %d MB/s (nginx `limit_rate`), 512 MiB blob" % rl["per_connection_mbps"])
add("")
add("| connections | Haul MB/s | aria2c MB/s | ideal MB/s (n × limit, capped at the ceiling) |")
add("|---:|---:|---:|---:|")
for n in rl["results"]["haul"]:
    ideal = min(int(n) * rl["per_connection_mbps"], ceiling)
    add("| %s | %s | %s | %s |" % (n, f1(rl["results"]["haul"][n]["mbps_best"]), f1(rl["results"]["aria2c"][n]["mbps_best"]), f1(ideal)))
n16 = rl["results"]["haul"].get("16")
if n16:
    ideal16 = min(16 * rl["per_connection_mbps"], ceiling)
    add("")
    add("Target: 16 connections reach ≥ 90%% of %s MB/s: %s (%.0f%%)." % (f1(ideal16), mark(n16["mbps_best"] >= 0.9 * ideal16),
                                                                      100 * n16["mbps_best"] / ideal16))
add("")

t = S["slow_tail"]
add("## 4. Slow tail: one connection in ten at 1/20 of the rate (10 connections, 512 MiB)")
add("")
add("| tool | even s | one slow s | slowdown |")
add("|---|---:|---:|---:|")
for tool in ("haul", "aria2c"):
    even, slow = t["even"][tool]["wall_min"], t["one slow in ten"][tool]["wall_min"]
    add("| %s | %s | %s | %s× |" % (tool, f2(even), f2(slow), f2(slow / even)))
ratio = t["one slow in ten"]["haul"]["wall_min"] / t["even"]["haul"]["wall_min"]
add("")
add("Target: Haul within 1.15× of the even run: %s (%s×)." % (mark(ratio <= 1.15), f2(ratio)))
add("")

sl = S["small_layers"]
add("## 5. Many small layers: %d blobs (1 KiB–1 MiB, one of 64 MiB), %s MB" % (sl["layers"], f1(sl["bytes"] / 1e6)))
add("")
add("| tool | best s | median s |")
add("|---|---:|---:|")
for tool in ("haul", "curl loop"):
    add("| %s | %s | %s |" % (tool, f2(sl[tool]["wall_min"]), f2(sl[tool]["wall_median"])))
add("")

rs = S["resume"]
add("## 6. Resume after `kill -9` at 50% of the 2 GiB pull")
add("")
add("| measure | value |")
add("|---|---:|")
add("| uninterrupted pull | %s s |" % f2(rs["uninterrupted_s"]))
add("| killed after | %s s |" % f2(rs["killed_after_s"]))
add("| resume | %s s |" % f2(rs["resume_s"]))
add("| extra seconds (killed + resume − uninterrupted) | %s s |" % f2(rs["extra_s"]))
add("| bytes kept by the journal | %d |" % rs["kept_bytes"])
add("| bytes nginx sent in all | %d |" % rs["served_bytes"])
add("| re-downloaded | %d (%s%%) |" % (rs["extra_bytes"], f2(rs["extra_pct"])))
add("| of which in flight at the kill (sent by nginx, not yet on disk) | %d |" % rs["in_flight_at_kill"])
add("| hashing resumed at / hashed in the resume | %s / %s |" % (rs["hash_resumed_at"], rs["rehashed_this_run"]))
rehash = rs["kept_bytes"] - rs["hash_resumed_at"]
size6 = rs["served_bytes"] - rs["extra_bytes"]
add("| on disk past the hash frontier at the kill: read back and hashed by the resume | %d (%s%%) |" % (rehash, f2(100.0 * rehash / size6)))
add("")
no_rehash = rs["hash_resumed_at"] is not None and rs["hash_resumed_at"] == rs["hash_state_at"]
add("Targets: re-downloaded ≤ 2%%: %s (%s%%). No re-hash of the checkpointed prefix (the resume's hasher starts "
    "at the journal's hash state): %s. Bytes on disk past the hash frontier (hashed on resume) ≤ 10%% of the blob: "
    "%s (%s%%; pieces are at most 1/16 of the blob per connection, so the frontier trails the data by about "
    "a sixteenth)." % (mark(rs["extra_pct"] <= 2), f2(rs["extra_pct"]), mark(no_rehash), mark(rehash <= 0.1 * size6),
                       f2(100.0 * rehash / size6)))
add("")
add("Of the %d bytes fetched twice, %d were in flight at the kill: sent by nginx but still in the kernel's socket "
    "buffers (nginx's send buffers and Haul's receive buffers, 16 connections' worth, autotuned up to several MB "
    "each on loopback). Only %d bytes were lost to checkpoint granularity. No client can keep bytes it never "
    "received, so over loopback the share varies with how full those buffers were at the kill (1.4–4.5%% across "
    "runs here). Capping Haul's SO_RCVBUF at 1 or 2 MiB was tried and did not reduce it: the "
    "server's send buffers hold the larger part."
    % (rs["extra_bytes"], rs["in_flight_at_kill"], rs["extra_bytes"] - rs["in_flight_at_kill"]))
add("")

d = S["daemon"]
add("## 7. Daemon overhead: the 2 GiB pull through `haul serve` /api/pull vs the CLI")
add("")
add("| path | best s | median s | CPU s/GiB | peak RSS MiB |")
add("|---|---:|---:|---:|---:|")
for label, key in (("CLI `haul pull`", "cli"), ("`haul serve` + /api/pull (curl)", "daemon")):
    add("| %s | %s | %s | %s | %s |" % (label, f2(d[key]["wall_min"]), f2(d[key]["wall_median"]), f2(d[key]["cpu_per_gib"]), f1(d[key]["rss_mib"])))
add("")

if "limit_rate" in S:
    add("## 8. `--limit-rate`: one bucket for every connection (unlimited CDN, 16 connections)")
    add("")
    add("| limit | seconds | average ÷ limit | worst burst beyond the rate |")
    add("|---|---:|---:|---:|")
    for r in S["limit_rate"]:
        add("| %s/s | %s | %s | %s s worth |" % (r["rate"], f1(r["seconds"]), "%.3f" % r["average_ratio"], f2(r["worst_burst_s"])))
    add("")
    add("Targets: average within ±5%% of the limit: %s; no burst beyond one second's worth: %s."
        % ("met" if all(abs(r["average_ratio"] - 1) <= 0.05 for r in S["limit_rate"]) else "**not met**",
           "met" if all(r["worst_burst_s"] <= 1 for r in S["limit_rate"]) else "**not met**"))
    add("")

VARIANTS = ("haul", "haul --direct-io")


def paired_table(p):
    add("| | %s | `curl -o` (unverified) | `openssl dgst` of curl's file |" % " | ".join(VARIANTS))
    add("|---|---:|---:|---:|---:|")
    add("| median s | %s | %s | %s |" % (" | ".join(f2(p[v]["wall_median"]) for v in VARIANTS), f2(p["curl_o"]["wall_median"]),
                                        f2(p["dgst"]["wall_median"])))
    add("| CPU s/GiB (best run) | %s | %s | %s |" % (" | ".join(f2(p[v]["cpu_per_gib"]) for v in VARIANTS),
                                                    f2(p["curl_o"]["cpu_per_gib"]), f2(p["dgst"]["cpu_per_gib"])))
    add("| peak RSS MiB | %s | %s | |" % (" | ".join(f1(p[v]["rss_mib"]) for v in VARIANTS), f1(p["curl_o"]["rss_mib"])))
    add("")
    for v in VARIANTS:
        add("- `%s`: wall ÷ `curl -o` per trial %s, median **%s×**; CPU ÷ (`curl -o` + dgst) per trial %s, median **%s×**."
            % (v, ", ".join(f2(r) for r in p[v]["wall_ratios"]), f2(p[v]["wall_ratio_median"]),
               ", ".join(f2(r) for r in p[v]["cpu_ratios"]), f2(p[v]["cpu_ratio_median"])))
    add("")


if "paired" in S:
    p = S["paired"]
    add("## 9. The ceiling, paired: Haul's verified pull vs an unverified `curl -o` of the same 2 GiB blob")
    add("")
    add("%d trials; in each, Haul through the page cache, Haul with `--direct-io` and `curl -o` run back to back, "
        "in an order that rotates from trial to trial (each run's writeback slows the next), and only the "
        "per-trial ratios are compared. Every run starts with all earlier outputs deleted and the disk idle "
        "(see scenario 1 for why that matters on this VM)." % p["trials"])
    add("")
    paired_table(p)
    best = min(VARIANTS, key=lambda v: p[v]["wall_ratio_median"])
    add("Targets: wall ≤ 1.00× `curl -o`: %s (`haul` %s×, `haul --direct-io` %s×); CPU ≤ 1.00× `curl -o` + dgst: %s "
        "(%s×, %s×)."
        % (mark(p[best]["wall_ratio_median"] <= 1.0), f2(p["haul"]["wall_ratio_median"]), f2(p["haul --direct-io"]["wall_ratio_median"]),
           mark(min(p[v]["cpu_ratio_median"] for v in VARIANTS) <= 1.0), f2(p["haul"]["cpu_ratio_median"]),
           f2(p["haul --direct-io"]["cpu_ratio_median"])))
    add("")
    add("`--direct-io` writes with O_DIRECT from an aligned per-connection stage and reads back for hashing with "
        "O_DIRECT: no page-cache page is allocated or copied into, so its CPU stays low and steady, but the bytes "
        "cross the disk twice (written, then read back for the hash), so it is as fast as the disk's combined "
        "read and write bandwidth allows. Through the page cache the read-back is a memory copy and the disk write "
        "happens later, in writeback, but every page is a fresh allocation; on this VM that copy's cost swings "
        "by 4× from run to run. Both modes are kept: `--direct-io` (or `HAUL_DIRECT_IO=1`) for machines where "
        "page-cache writes are the bottleneck, the page cache by default, since O_DIRECT doubles the disk traffic "
        "on slow or network disks.")
    add("")

if "https" in S:
    h = S["https"]
    p = h["paired"]
    add("## 10. HTTPS: the 2 GiB blob over TLS (nginx, a CA made by the bench)")
    add("")
    add("Paired as in scenario 9, over TLS (%d trials); the peers below ran %d times each:" % (p["trials"], h.get("peer_runs", 1)))
    add("")
    paired_table(p)
    add("Full TLS handshakes per Haul pull: %d of %d connections (`haul`), %d of %d (`haul --direct-io`): one per host "
        "(the registry and the CDN); every other range connection resumes the TLS session."
        % (p["haul"]["full_handshakes"], p["haul"]["connections"], p["haul --direct-io"]["full_handshakes"],
           p["haul --direct-io"]["connections"]))
    add("")
    add("| verifying peer | best s | MB/s best | median s | MB/s median | CPU s/GiB | connections | full TLS handshakes |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    for tool, r in [(v, p[v]) for v in VARIANTS] + list(h["peers"].items()):
        add("| %s | %s | %s | %s | %s | %s | %d | %d |" % (tool, f2(r["wall_min"]), f1(r["mbps_best"]), f2(r["wall_median"]),
                                                         f1(r["mbps_median"]), f2(r["cpu_per_gib"]), r["connections"], r["full_handshakes"]))
    add("")
    fastest = max(r["mbps_median"] for r in h["peers"].values())
    lead = max(p[v]["mbps_median"] for v in VARIANTS) / fastest
    to_curl = min(p[v]["wall_ratio_median"] for v in VARIANTS)
    add("Targets (medians): Haul ≥ 1.2× the fastest verifying peer: %s (%s×); ≤ 1.05× the wall time of `curl -o` "
        "over TLS: %s (%s×)." % (mark(lead >= 1.2), f2(lead), mark(to_curl <= 1.05), f2(to_curl)))
    add("")
    add("Over TLS both cores are busy: nginx encrypts, the client decrypts, and Haul also hashes every byte "
        "(SHA-256 is a third of its user time in `perf`), which `curl -o` does not. With the server on the same "
        "two cores, the hash is paid in wall time; a verifying client cannot beat an unverifying one there unless "
        "its other costs are lower, which is what `--direct-io` buys back in kernel time.")
    add("")

if "big_models" in S:
    b = S["big_models"]
    ref = b["reference"]
    add("## 11. A 16 GiB layer, and a model of 300 small layers")
    add("")
    add("| pull | bytes | s | MB/s | vs the 2 GiB pull | CPU s/GiB | peak RSS MiB | largest journal |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|")
    add("| 2 GiB (run just before) | %d | %s | %s | 1.00× | %s | %s | |" % (2 << 30, f2(ref["wall_min"]), f1(ref["mbps_best"]),
                                                                          f2(ref["cpu_per_gib"]), f1(ref["rss_mib"])))
    r = b["haul"]
    add("| 16 GiB | %d | %s | %s | %s× | %s | %s | %d B |" % (b["huge_bytes"], f2(r["wall_min"]), f1(r["mbps_best"]),
                                                            f2(r["mbps_best"] / ref["mbps_best"]), f2(r["cpu_per_gib"]),
                                                            f1(r["rss_mib"]), r["journal_max_bytes"]))
    m = b["many300"]
    add("| %d layers (1 KiB–4 MiB), median | %d | %s | %s | | %s | %s | %d B |" % (m["layers"], m["bytes"], f2(m["wall_median"]),
                                                                              f1(m["mbps_median"]), f2(m["cpu_per_gib"]),
                                                                              f1(m["rss_mib"]), m["journal_max_bytes"]))
    add("")
    rss = max(r["rss_mib"], m["rss_mib"])
    within = r["mbps_best"] / ref["mbps_best"]
    journal = max(r["journal_max_bytes"], m["journal_max_bytes"])
    add("Targets: peak RSS ≤ 64 MiB and flat with size: %s (%s MiB at most; %s MiB for 2 GiB); 16 GiB throughput "
        "within 10%% of the 2 GiB run (or better): %s (%s×); journals stay small: %s (at most %d bytes: a journal lists byte "
        "ranges and a 108-byte hash state, not pieces)."
        % (mark(rss <= 64 and rss <= ref["rss_mib"] * 1.2), f1(rss), f1(ref["rss_mib"]), mark(within >= 0.9), f2(within),
           mark(journal <= 64 << 10), journal))
    add("")
    add("The 16 GiB layer is a sparse file of zeros: its bytes cost nginx no disk reads, as a remote registry's "
        "cost the client none; nothing on the way compresses, so to Haul they are as good as random ones. The "
        "source is read into the page cache first, as for the other scenarios.%s"
        % (" Past the kernel's dirty-page limit (%s GiB here: vm.dirty_ratio of the memory) any writer, Haul or "
           "`curl -o`, is held to the disk's write pace: a 2 GiB pull never reaches it, and most of the 16 GiB is "
           "written at the disk's speed, not the page cache's." % f1(b["dirty_limit_bytes"] / (1 << 30))
           if "dirty_limit_bytes" in b else ""))
    add("")

if "daemon_many" in S:
    d = S["daemon_many"]
    add("## 12. Eight different models through one `haul serve` at once")
    add("")
    add("%d clients, one model of 256 MiB each, all started together (`/api/pull`, streaming), against one client "
        "pulling the 2 GiB model through the daemon; %d rounds of each, alternating." % (d["models"], d["runs"]))
    add("")
    add("| measure | value |")
    add("|---|---:|")
    add("| aggregate of the eight (median) | %s MB/s |" % f1(d["eight_mbps_median"]))
    add("| one 2 GiB pull (median) | %s MB/s |" % f1(d["one_mbps_median"]))
    add("| ratio per round | %s |" % ", ".join(f2(x) for x in d["ratios"]))
    add("| each client finished after, last round (s) | %s |" % ", ".join(f2(x) for x in d["finished_s"]))
    add("| longest stretch without progress, any client, any round | %s s |" % f2(d["longest_still_s"]))
    add("| daemon CPU s/GiB, peak RSS | %s, %s MiB |" % (f2(d["cpu_per_gib"]), f1(d["rss_mib"])))
    add("")
    add("Targets: aggregate ≥ 0.9× a single pull's (median of paired rounds): %s (%s×); every client's progress moves "
        "at least once a second: %s (%s s at most); no pull starves: %s (the last client finished at most %s× later "
        "than the first)."
        % (mark(d["ratio"] >= 0.9), f2(d["ratio"]), mark(d["longest_still_s"] <= 1.0), f2(d["longest_still_s"]),
           mark(d["longest_still_s"] <= 1.0 and d["finish_spread"] <= 2), f2(d["finish_spread"])))
    add("")

if "ramalama" in S:
    r = S["ramalama"]
    add("## 13. RamaLama: `ollama://library/big` from \"registry.ollama.ai\" over HTTPS")
    add("")
    if "error" in r:
        add("Could not run: %s" % r["error"])
    else:
        add("RamaLama (PyPI) pulls Ollama models only from `https://registry.ollama.ai`. In a network namespace whose "
            "`/etc/netns/NS/hosts` names 127.0.0.1 `registry.ollama.ai`, a second nginx serves the bench's registry on "
            "port 443 with the bench's CA, which both trust through `SSL_CERT_FILE`; both pull the 2 GiB model by its "
            "default-registry name, one after the other.")
        add("")
        add("| tool | best s | median s | MB/s median | CPU s/GiB | peak RSS MiB |")
        add("|---|---:|---:|---:|---:|---:|")
        for tool, x in r.items():
            add("| %s | %s | %s | %s | %s | %s |" % (tool, f2(x["wall_min"]), f2(x["wall_median"]), f1(x["mbps_median"]),
                                                   f2(x["cpu_per_gib"]), f1(x["rss_mib"])))
        add("")
        add("RamaLama reads one connection 1 KiB at a time (`urllib`) and verifies the SHA-256 after the download.")
    add("")

if "push" in S:
    p = S["push"]
    add("## 14. Push into Debian's `docker-registry`")
    add("")
    add("The registry on loopback with filesystem storage, deleted before every run (and Haul's record of earlier pushes, "
        "which would mount instead of sending). %d paired trials in alternating order%s." % (p["trials"], ", measured " + p["date"] if "date" in p else ""))
    add("")
    add("| 2 GiB blob | best s | median s | MB/s median | CPU s/GiB | peak RSS MiB |")
    add("|---|---:|---:|---:|---:|---:|")
    for label, x in (("haul push (chunks of 64 MiB, then the manifest)", p["haul"]), ("curl -T, one monolithic PUT (ceiling)", p["curl_put"])):
        add("| %s | %s | %s | %s | %s | %s |" % (label, f2(x["wall_min"]), f2(x["wall_median"]), f1(x["mbps_median"]),
                                               f2(x["cpu_per_gib"]), f1(x["rss_mib"])))
    add("")
    m = p["many"]
    add("| %d blobs, %s MB | best s | median s | CPU s | peak RSS MiB |" % (m["blobs"], f1(m["bytes"] / 1e6)))
    add("|---|---:|---:|---:|---:|")
    for label, x in (("haul push", m["haul"]), ("skopeo copy (OCI layout, OCI media types)", m["skopeo"])):
        add("| %s | %s | %s | %s | %s |" % (label, f2(x["wall_min"]), f2(x["wall_median"]),
                                          f2(x["cpu_per_gib"] * m["bytes"] / (1 << 30)), f1(x["rss_mib"])))
    add("")
    ceiling_share = 1 / p["haul"]["wall_ratio_median"]
    add("Targets: the big blob at ≥ 0.9× the ceiling's throughput (median of paired ratios): %s (%s×); the many-blob model "
        "≥ 1.5× skopeo: %s (%s×, median of paired speedups)."
        % (mark(ceiling_share >= 0.9), f2(ceiling_share), mark(m["speedup_median"] >= 1.5), f2(m["speedup_median"])))
    if "note" in p:
        add("")
        add(p["note"])
    add("")

if "adaptive" in S:
    a = S["adaptive"]
    add("## 15. Adaptive connections")
    add("")
    add("Haul's default finds each origin's connection count by measuring (`ConnectionController`); `--fixed` uses "
        "`--connections` as given. Four servers: (a) the test registry, whose CDN gives each connection %d MB/s while a "
        "client holds at most %d, and all of them together one connection's rate beyond (a rate that collapses under too "
        "many connections); (b) nginx at %d MB/s per connection that answers 503 to connections beyond %d (`limit_conn`); "
        "(c) plain loopback nginx; (d) the same over TLS. Per server: one run at each fixed count, then Haul adaptive "
        "paired and alternating with the best of them (%d pairs), a traced adaptive run for the counts it went through, "
        "and aria2c -x16." % (a["per_connection_mbps"], a["k"], a["per_connection_mbps"], a["k"], a["trials"]))
    add("")
    add("| server | blob MB | fixed 1 | fixed 2 | fixed 4 | fixed 8 | fixed 16 | best fixed (paired) | adaptive (paired) "
        "| adaptive ÷ best, time, median | aria2c -x16 | counts (s → count) |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ok = True
    for key, x in a["servers"].items():
        sweep = " | ".join(f1(x["sweep"][n]["mbps_best"]) for n in ("1", "2", "4", "8", "16"))
        ar = x["aria2c_x16"]
        aria = "failed" if "error" in ar else f1(ar["mbps_best"])
        trace = ", ".join("%s → %d" % (f1(t), n) for t, n in x["trace"])
        add("| (%s) %s | %s | %s | %d: %s | %s | **%s** | %s | %s |" % (
            key, x["label"], f1(x["bytes"] / 1e6), sweep, x["best_fixed"], f1(x["best"]["mbps_median"]),
            f1(x["adaptive"]["mbps_median"]), f2(x["ratio_to_best_median"]), aria, trace))
        ok = ok and x["ratio_to_best_median"] <= 1.1
    add("")
    add("MB/s; the sweep's columns are single runs, the paired columns medians. A count's trace comes from one "
        "HAUL_DEBUG run: each time an origin's limit changed.")
    add("")
    col = a["servers"].get("a")
    vs_aria = None
    if col and "error" not in col["aria2c_x16"]:
        vs_aria = col["aria2c_x16"]["wall_min"] / col["adaptive"]["wall_median"]
    add("Targets: within 10%% of the best fixed count on every server (median of paired ratios ≤ 1.10): %s; "
        "≥ 2× aria2c -x16 on (a): %s%s. Settled (the last change of the count): %s."
        % (mark(ok), mark(vs_aria is not None and vs_aria >= 2), " (%s×)" % f2(vs_aria) if vs_aria else "",
           ", ".join("(%s) %s s" % (k, f1(x["settled_s"])) for k, x in a["servers"].items())))
    if "note" in a:
        add("")
        add(a["note"])
    add("")

with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
    f.write("\n".join(lines) + "\n")

# The chart: throughput per tool and scenario.
fig, axes = plt.subplots(2, 2, figsize=(13, 9))
names = list(u.keys())
vals = [u[k]["mbps_best"] for k in names]
ax = axes[0][0]
ax.bar(range(len(names)), vals, color=["#2b6cb0" if k == "haul" else "#a0aec0" for k in names])
ax.axhline(speed, color="#c53030", linestyle="--", label="single-core SHA-256")
ax.axhline(tw["mbps_best"], color="#718096", linestyle=":", label="receive + write, no hash (curl -o)")
ax.set_xticks(range(len(names)), names, rotation=15, fontsize=8)
ax.set_ylabel("MB/s (best run)")
ax.set_title("2 GiB, unlimited loopback, verified")
ax.legend(fontsize=8)
ax = axes[0][1]
ns = [int(n) for n in rl["results"]["haul"]]
ax.plot(ns, [rl["results"]["haul"][str(n)]["mbps_best"] for n in ns], "o-", label="haul", color="#2b6cb0")
ax.plot(ns, [rl["results"]["aria2c"][str(n)]["mbps_best"] for n in ns], "s-", label="aria2c", color="#718096")
ax.plot(ns, [min(n * rl["per_connection_mbps"], ceiling) for n in ns], ":", label="ideal", color="#c53030")
ax.set_xlabel("connections")
ax.set_ylabel("MB/s")
ax.set_title("%d MB/s per connection" % rl["per_connection_mbps"])
ax.legend(fontsize=8)
ax = axes[1][0]
groups = [(label, S[key] if key == "paired" else S[key]["paired"]) for label, key in (("HTTP", "paired"), ("HTTPS", "https"))
          if key in S]
xs, labels, walls, cpus = [], [], [], []
for gi, (label, p) in enumerate(groups):
    for vi, v in enumerate(VARIANTS):
        xs.append(gi * 3 + vi)
        labels.append("%s\n%s" % (label, v))
        walls.append(p[v]["wall_ratio_median"])
        cpus.append(p[v]["cpu_ratio_median"])
ax.bar([x - 0.2 for x in xs], walls, 0.4, label="wall ÷ curl -o", color="#2b6cb0")
ax.bar([x + 0.2 for x in xs], cpus, 0.4, label="CPU ÷ (curl -o + dgst)", color="#90cdf4")
ax.axhline(1.0, color="#c53030", linestyle="--")
ax.set_xticks(xs, labels, fontsize=8)
ax.set_ylabel("median of paired ratios (lower is better)")
ax.set_title("verified Haul vs unverified curl -o, paired")
ax.legend(fontsize=8)
ax = axes[1][1]
labels = ["haul even", "haul slow", "aria2c even", "aria2c slow", "haul many", "curl loop many"]
secs = [t["even"]["haul"]["wall_min"], t["one slow in ten"]["haul"]["wall_min"], t["even"]["aria2c"]["wall_min"],
        t["one slow in ten"]["aria2c"]["wall_min"], sl["haul"]["wall_min"], sl["curl loop"]["wall_min"]]
ax.bar(range(len(labels)), secs, color=["#2b6cb0", "#2b6cb0", "#a0aec0", "#a0aec0", "#2b6cb0", "#a0aec0"])
ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
ax.set_ylabel("seconds (lower is better)")
ax.set_title("slow tail (512 MiB) and small layers")
fig.suptitle("Haul vs peers, %s" % R["date"])
fig.tight_layout()
fig.savefig(os.path.join(HERE, "chart.png"), dpi=110)
print(os.path.join(HERE, "RESULTS.md"))
