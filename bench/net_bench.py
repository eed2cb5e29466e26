#!/usr/bin/env python3
"""Network throughput through a published port, berth and Podman side by side in one run.

A busybox httpd in a container (the fixed `bb` image) serves a large file from a bind-mounted
host directory; curl on the host fetches it through a port published on 127.0.0.1, for each
network mode: the bridge (NAT rules: nftables, or iptables with --firewall iptables), slirp4netns
and pasta. The same fetch from an httpd on the host's loopback is the ceiling. Figures are MB/s
(10^6 bytes per second of curl's time_total), best and median of the runs, and the ratio
berth/Podman (higher is better for berth). Nothing here is a test: no assertion on speed.

  bench/net_bench.py [--images DIR] [--runs N] [--size-mb N] [--only bridge,slirp4netns,pasta]
                     [--firewall nftables|iptables] [--json OUT]

iperf3 is not used: Debian's iperf3 is a dynamically linked program (libiperf0, libssl, libsctp)
that the busybox image cannot run, so this measures a large HTTP transfer only.

Podman 4.3 (Debian 12) needs runtime=runc and cgroupfs, as in bench/bench.py; it has no pasta
mode before 4.4, which shows as "n/a". The engines' bridges get different subnets (berth's default
network 10.231.200.0/24, Podman's 10.88.0.0/16) so both can run at once.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the checkout from importing bench.py

import bench  # noqa: E402
from bench import loaded, unmount_under  # noqa: E402

MODES = ["bridge", "slirp4netns", "pasta"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def make_engines(tmp, firewall):
    fw = f'firewall_driver = "{firewall}"\n' if firewall else ""
    return bench.make_engines(tmp, bench.BERTH_DEFAULT_SUBNET + fw, fw)


def fetch(url, timeout=120):
    """(bytes, seconds) of one download with curl to /dev/null."""
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", str(timeout), "-w",
                        "%{size_download} %{time_total} %{http_code}", url],
                       capture_output=True, text=True)
    size, secs, code = p.stdout.split()
    if p.returncode != 0 or code != "200":
        raise RuntimeError(f"curl {url}: rc={p.returncode} http={code} {p.stderr}")
    return int(size), float(secs)


def wait_http(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        p = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "2", "-w",
                            "%{http_code}", url], capture_output=True, text=True)
        if p.stdout == "200":
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def measure(url, size, runs):
    fetch(url)  # warm: page cache, conntrack, the helpers' buffers
    rates = []
    for _ in range(runs):
        got, secs = fetch(url)
        if got != size:
            raise RuntimeError(f"{url}: {got} bytes, expected {size}")
        rates.append(got / secs / 1e6)
    return {"best": max(rates), "median": statistics.median(rates), "runs": len(rates)}


def measure_interleaved(urls, size, runs):
    """measure() of several servers, one fetch of each in turn per run, so that the host's
    load drifts over all of them alike."""
    for url in urls.values():
        fetch(url)  # warm
    rates = {name: [] for name in urls}
    for _ in range(runs):
        for name, url in urls.items():
            got, secs = fetch(url)
            if got != size:
                raise RuntimeError(f"{url}: {got} bytes, expected {size}")
            rates[name].append(got / secs / 1e6)
    return {name: {"best": max(r), "median": statistics.median(r), "runs": len(r)}
            for name, r in rates.items()}


def serve(engine, ref, mode, www, port):
    """A detached httpd container publishing 127.0.0.1:port -> 80 in `mode`; -> its id."""
    net = [] if mode == "bridge" else ["--network", mode]
    p = engine.run("run", "-d", *net, "-p", f"127.0.0.1:{port}:80", "-v", f"{www}:/www:ro", ref,
                   "httpd", "-f", "-p", "80", "-h", "/www", check=False)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed"
    return p.stdout.strip(), ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "images"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--only", default="")
    ap.add_argument("--firewall", default="", choices=["", "nftables", "iptables"])
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is needed (apt-get install curl)")
    tmp = tempfile.mkdtemp(prefix="nb-", dir="/var/tmp")
    results = {}
    engines = []
    running = []
    try:
        berth, podman = make_engines(tmp, args.firewall)
        engines = [e for e in (berth, podman) if e is not None]
        if podman is None:
            print("podman not installed (apt-get install podman runc): berth figures only",
                  file=sys.stderr)
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        size = args.size_mb * 1000 * 1000
        with open(os.path.join(www, "big"), "wb") as f:
            chunk = os.urandom(1 << 20)
            left = size
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)
        refs = {e.name: loaded(e, args.images, tmp) for e in engines}

        # The ceiling: the same file from an httpd on the host's loopback.
        port = free_port()
        host = subprocess.Popen(["busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", www])
        try:
            url = f"http://127.0.0.1:{port}/big"
            wait_http(url)
            results["host loopback"] = {"host": measure(url, size, args.runs)}
        finally:
            host.terminate()
            host.wait()

        for mode in MODES:
            if args.only and mode not in args.only.split(","):
                continue
            results[mode] = {}
            # Both engines' servers run at once and are measured interleaved, run by run.
            urls = {}
            for e in engines:
                port = free_port()
                cid, err = serve(e, refs[e.name], mode, www, port)
                if cid is None:
                    results[mode][e.name] = {"error": err}
                    continue
                running.append((e, cid))
                url = f"http://127.0.0.1:{port}/big"
                try:
                    wait_http(url)
                except RuntimeError as err:
                    logs = e.run("logs", cid, check=False)
                    results[mode][e.name] = {"error": f"{err} {logs.stdout} {logs.stderr}"}
                    continue
                urls[e.name] = url
            results[mode].update(measure_interleaved(urls, size, args.runs))
            for e, cid in [r for r in running]:
                e.run("rm", "-f", "-t", "0", cid, check=False)
                running.remove((e, cid))

        print(f"HTTP GET of {args.size_mb} MB through 127.0.0.1, MB/s (best / median of "
              f"{args.runs}){'; firewall ' + args.firewall if args.firewall else ''}")
        for case, r in results.items():
            line = f"{case:14}"
            for who, v in r.items():
                if "error" in v:
                    line += f"  {who}: n/a ({v['error'][:60]})"
                else:
                    line += f"  {who}: {v['best']:8.1f} / {v['median']:8.1f}"
            b, p = r.get("berth", {}), r.get("podman", {})
            if "best" in b and "best" in p:
                line += (f"  berth/podman {b['best'] / p['best']:.2f}x best, "
                         f"{b['median'] / p['median']:.2f}x median")
            print(line)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    finally:
        for e, cid in running:
            e.run("rm", "-f", "-t", "0", cid, check=False)
        for e in engines:
            e.run("rm", "-af", "-t", "0", check=False)
            e.run("system", "reset", "-f", check=False)
        unmount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
