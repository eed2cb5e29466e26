#!/usr/bin/env python3
"""The API service side by side: `berth system service` and `podman system service`, each over a
private store holding the fixed bb image, driven by the same real clients:

  docker ps                        (DOCKER_HOST=unix://<service socket>)
  docker run --rm bb true
  docker-compose up -d             (two busybox services, a published port; `down` untimed)

Runs are interleaved (berth, podman, berth, ...); the report gives min and median wall time of
each and the ratio podman/berth of the minimums (higher is better for berth). No assertion.

  bench/api_bench.py [--images DIR] [--runs N] [--only ps,run,compose] [--json OUT]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import make_engines, oci_archive, summary, timed, unmount_under  # noqa: E402

IMAGE = "localhost/bb:latest"
COMPOSE_FILE = """version: "3"
services:
  web:
    image: {image}
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports:
      - "127.0.0.1:{port}:8080"
  client:
    image: {image}
    command: ["sleep", "300"]
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Service:
    """`<engine> system service` on a socket in `tmp`, killed by pid at the end."""

    def __init__(self, engine, tmp):
        self.engine = engine
        self.sock = os.path.join(tmp, f"{engine.name}.sock")
        self.log = open(os.path.join(tmp, f"{engine.name}-service.log"), "w")
        self.proc = subprocess.Popen(
            engine.argv + ["system", "service", "--time", "0", "unix://" + self.sock],
            stdout=self.log, stderr=subprocess.STDOUT, env=engine.env)
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(self.sock) and self.docker("version", check=False).returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{engine.name} service exited: see {self.log.name}")
            time.sleep(0.1)
        raise RuntimeError(f"{engine.name} service did not answer on {self.sock}")

    def env(self, tmp=None):
        e = dict(os.environ)
        e["DOCKER_HOST"] = "unix://" + self.sock
        e["DOCKER_CONFIG"] = os.path.join(os.path.dirname(self.sock), "docker-config")
        return e

    def docker(self, *args, check=True):
        p = subprocess.run(["docker"] + list(args), capture_output=True, text=True,
                           env=self.env())
        if check and p.returncode != 0:
            raise RuntimeError(f"{self.engine.name}: docker {' '.join(args)}: {p.stderr}")
        return p

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def prepare(engine, images, tmp):
    archive = os.path.join(tmp, "bb.tar")
    if not os.path.exists(archive):
        oci_archive(os.path.join(images, "bb"), archive)
    engine.run("load", "-i", archive)
    ident = engine.run("images", "-q").stdout.split()[0]
    engine.run("tag", ident, IMAGE)


def api_get(sock, path):
    """One GET over the service's socket, no client start-up: the service's own latency."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sock)
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {data[:200]!r}")
    return data


def interleaved(services, runs, fn, before=None):
    times = {s.engine.name: [] for s in services}
    for _ in range(runs):
        for s in services:
            times[s.engine.name] += timed(lambda s=s: fn(s), 1,
                                          (lambda s=s: before(s)) if before else None)
    return {name: summary(t) for name, t in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=os.environ.get("BERTH_SHARED_IMAGES",
                                                       "/work/shared/images"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--only", default="ps,run,compose")
    ap.add_argument("--json")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if shutil.which("docker") is None:
        sys.exit("the docker CLI is needed (DOCKER_HOST clients)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="berth-api-bench-", ignore_cleanup_errors=True) as tmp:
        berth, podman = make_engines(tmp)
        engines = [e for e in (berth, podman) if e is not None]
        for e in engines:
            prepare(e, args.images, tmp)
        services = []
        try:
            for e in engines:
                services.append(Service(e, tmp))
            if "ps" in only:
                for s in services:  # a few containers to list
                    for i in range(5):
                        s.docker("create", "--name", f"ps{i}", IMAGE, "true")
                results["docker ps -a"] = interleaved(
                    services, args.runs, lambda s: s.docker("ps", "-a"))
                # The same listing without the docker CLI's own start-up (~45 ms here, the same
                # for both services), which caps the ratio above.
                results["GET /containers/json?all=1"] = interleaved(
                    services, args.runs * 3,
                    lambda s: api_get(s.sock, "/v1.41/containers/json?all=1"))
                for s in services:
                    s.docker("rm", "-f", *[f"ps{i}" for i in range(5)])
            if "run" in only:
                results["docker run --rm bb true"] = interleaved(
                    services, args.runs,
                    lambda s: s.docker("run", "--rm", "--network", "none", IMAGE, "true"))
            if "compose" in only and shutil.which("docker-compose"):
                cdir = os.path.join(tmp, "compose")
                os.makedirs(cdir, exist_ok=True)
                cfile = os.path.join(cdir, "docker-compose.yml")

                def write_file(_s):
                    with open(cfile, "w") as f:
                        f.write(COMPOSE_FILE.format(image=IMAGE, port=free_port()))

                def up(s):
                    subprocess.run(["docker-compose", "-p", "bench", "-f", cfile, "up", "-d"],
                                   check=True, capture_output=True, env=s.env(), cwd=cdir)

                def up_then_down(s):
                    up(s)

                times = {s.engine.name: [] for s in services}
                for _ in range(args.runs):
                    for s in services:
                        write_file(s)
                        t0 = time.perf_counter()
                        up_then_down(s)
                        times[s.engine.name].append(time.perf_counter() - t0)
                        subprocess.run(["docker-compose", "-p", "bench", "-f", cfile, "down",
                                        "-t", "0"], capture_output=True, env=s.env(), cwd=cdir)
                results["docker-compose up -d"] = {n: summary(t) for n, t in times.items()}
        finally:
            for s in services:
                s.close()
            for e in engines:
                e.run("rm", "-af", check=False)
                e.run("system", "reset", "-f", check=False)
            unmount_under(tmp)
    for case, r in results.items():
        line = f"{case:28s}"
        for name in ("berth", "podman"):
            if name in r:
                line += f"  {name} min {r[name]['min'] * 1000:7.1f} ms med " \
                        f"{r[name]['median'] * 1000:7.1f} ms"
        if "berth" in r and "podman" in r:
            line += f"  podman/berth (min): {r['podman']['min'] / r['berth']['min']:.2f}x"
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
