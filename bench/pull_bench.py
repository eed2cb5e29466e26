#!/usr/bin/env python3
"""Pull benchmarks, berth and Podman side by side in one run, against Debian's docker-registry on
127.0.0.1 (started here, plain HTTP, marked insecure for both engines):

  cold-deb, cold-multi  pull into a new, empty store each run
  warm-bb               pull of an image already in the store (one manifest request)
  lower bound           gunzip + extraction of the same layers to the same disk (`tar -xzf`)

  bench/pull_bench.py [--images DIR] [--runs N] [--only cold-deb,warm-bb] [--json OUT]

Reports min and median wall time and Podman/berth (higher is better for berth). No assertion.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402

RUN_REGISTRY = os.path.join(ROOT, "tests", "fixtures", "registry", "run-registry.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "registry")
        os.makedirs(self.dir)
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([RUN_REGISTRY, self.dir, str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("docker-registry did not start")
        self.host = f"127.0.0.1:{self.port}"

    def push(self, layout, name):
        bench.sh(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:latest",
                  f"docker://{self.host}/{name}:latest"])

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def case_cold(engines, reg, images, runs, tmp, which):
    return bench.cold_against_tar(
        engines, runs, tmp, f"pull-{which}",
        lambda store: store.run("pull", "-q", f"{reg.host}/{which}:latest"),
        bench.layer_blobs(os.path.join(images, which)))


def case_warm(engines, reg, images, runs, tmp):
    ref = f"{reg.host}/bb:latest"
    for e in engines:
        e.run("pull", "-q", ref)
    return bench.interleaved({e.name: lambda e=e: e.run("pull", "-q", ref) for e in engines},
                             runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "images"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    images = os.path.abspath(args.images)
    tmp = tempfile.mkdtemp(prefix="berth-pull-bench-")
    reg = Registry(tmp)
    results = {}
    try:
        for name in ("bb", "deb", "multi"):
            reg.push(os.path.join(images, name), name)
        conf = os.path.join(tmp, "registries.conf")
        with open(conf, "w") as f:
            f.write(f'[[registry]]\nlocation = "{reg.host}"\ninsecure = true\n')
        berth, podman = bench.make_engines(tmp)
        engines = [e for e in (berth, podman) if e is not None]
        for e in engines:
            e.env = dict(e.env, CONTAINERS_REGISTRIES_CONF=conf)
        cases = {
            "cold-deb": lambda: case_cold(engines, reg, images, args.runs, tmp, "deb"),
            "cold-multi": lambda: case_cold(engines, reg, images, args.runs, tmp, "multi"),
            "warm-bb": lambda: case_warm(engines, reg, images, max(args.runs, 10), tmp),
        }
        only = [c for c in args.only.split(",") if c]
        for name, fn in cases.items():
            if only and name not in only:
                continue
            r = fn()
            results[name] = r
            line = f"{name:12s}"
            for k, v in r.items():
                line += f"  {k}: min {v['min'] * 1000:8.1f} ms, median {v['median'] * 1000:8.1f} ms"
            if "berth" in r and "podman" in r:
                line += f"  podman/berth (min): {r['podman']['min'] / r['berth']['min']:.2f}x"
            if "berth" in r and "tar -xzf" in r:
                line += f"  berth/tar (min): {r['berth']['min'] / r['tar -xzf']['min']:.2f}x"
            print(line, flush=True)
        for e in engines:
            bench.drop_store(e)
    finally:
        reg.stop()
        bench.unmount_under(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
