#!/usr/bin/env python3
"""Side-by-side benchmarks of berth and Podman on the fixed images in ../shared/images.

Each case runs berth and Podman interleaved in one session, each in a private store, and reports
the minimum and median wall time of each and the ratio Podman/berth (higher is better for berth).
Minimums are the figure to compare on this noisy VM. Nothing here is a test: no assertion on time.

  bench/bench.py [--images DIR] [--runs N] [--only NAME[,NAME]] [--json OUT]

Podman 4.3 on this kind of host needs runtime=runc and cgroupfs; the file this script gives Podman
through CONTAINERS_CONF says so. berth gets no such file.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Engine:
    def __init__(self, name, argv, env):
        self.name, self.argv, self.env = name, argv, env

    def run(self, *args, check=True, input=None):
        p = subprocess.run(self.argv + list(args), capture_output=True, text=True, env=self.env,
                           input=input)
        if check and p.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args)}: rc={p.returncode}\n{p.stderr}")
        return p

    def has(self, *cmd):
        return self.run(*cmd, "--help", check=False).returncode == 0


def processes_under(path):
    """The pids of processes whose command line names something below `path`."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if (path + "/").encode() in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def unmount_under(path, settle=10.0):
    """Unmounts everything mounted below `path` (the stores' overlay and shm mounts), deepest
    first: `umount -R` needs `path` itself to be a mount point. Waits first (up to `settle`
    seconds) for the processes still working on those stores: Podman's conmon runs `podman
    container cleanup` after a container's exit, which mounts the store again (and re-created
    it once removed, leaving a mount behind)."""
    deadline = time.time() + settle
    while processes_under(path) and time.time() < deadline:
        time.sleep(0.1)
    with open("/proc/self/mountinfo") as f:
        targets = [line.split()[4] for line in f]
    for t in sorted((t for t in targets if t.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", t], capture_output=True)


def timed(fn, runs, before=None):
    times = []
    for _ in range(runs):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def interleaved(fns, runs, before=None):
    """Times each of `fns` (name -> callable) `runs` times, taking turns (a, b, a, b, ...), so
    that a slow spell of the machine (writeback, another process) falls on every engine alike;
    `before(name)`, untimed, precedes each run. -> name -> summary."""
    times = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            if before:
                before(name)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: summary(t) for name, t in times.items()}


def summary(times):
    return {"min": min(times), "median": statistics.median(times), "runs": len(times)}


def oci_archive(layout, out):
    with tarfile.open(out, "w") as t:
        for name in sorted(os.listdir(layout)):
            t.add(os.path.join(layout, name), arcname=name)
    return out


# berth's default network in the benchmarks: not Podman's 10.88.0.0/16, which Podman's CNI
# bridge (cni-podman0) keeps after its last container and berth then refuses to share.
BERTH_DEFAULT_SUBNET = 'default_subnet = "10.231.200.0/24"\n'


def make_engines(tmp, berth_network=BERTH_DEFAULT_SUBNET, podman_network=""):
    """berth and Podman (None when not installed) over stores in `tmp`; the `[network]` lines
    given go into each one's containers.conf."""
    berth_bin = os.environ.get("BERTH_BIN", os.path.join(ROOT, "build", "bin", "berth"))
    env = dict(os.environ)
    if berth_network:
        bconf = os.path.join(tmp, "berth-containers.conf")
        with open(bconf, "w") as f:
            f.write("[network]\n" + berth_network)
        env["CONTAINERS_CONF"] = bconf
    berth = Engine("berth", [berth_bin, "--root", f"{tmp}/berth/root", "--runroot",
                             f"{tmp}/berth/run"], env)
    podman = None
    if shutil.which("podman"):
        conf = os.path.join(tmp, "podman-containers.conf")
        with open(conf, "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
                    '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
                    'events_logger = "file"\n')
            if podman_network:
                f.write("[network]\n" + podman_network)
        penv = dict(os.environ, CONTAINERS_CONF=conf)
        podman = Engine("podman", ["podman", "--root", f"{tmp}/podman/root", "--runroot",
                                   f"{tmp}/podman/run", "--storage-driver", "overlay"], penv)
    return berth, podman


def fresh(engine, root):
    """The same engine over a new, empty store at `root`."""
    argv = list(engine.argv)
    argv[argv.index("--root") + 1] = os.path.join(root, "root")
    argv[argv.index("--runroot") + 1] = os.path.join(root, "run")
    return Engine(engine.name, argv, engine.env)


def drop_store(engine):
    if engine.name == "podman":
        engine.run("system", "reset", "-f", check=False)
    else:
        engine.run("system", "reset", "-f", check=False)
    root = engine.argv[engine.argv.index("--root") + 1]
    unmount_under(os.path.dirname(root))
    shutil.rmtree(os.path.dirname(root), ignore_errors=True)


def layer_blobs(layout):
    """The paths of the layer blobs of an OCI layout's first image."""
    return [os.path.join(layout, "blobs", "sha256", l["digest"].split(":")[1])
            for l in layout_manifest(layout)["layers"]]


def cold_against_tar(engines, runs, tmp, key, act, layers):
    """Cold runs of `act(store)` (a load, a pull): every run into a new, empty store, taking
    turns with the lower bound (tar's gunzip and extraction of `layers` on the same disk), each
    after a sync. In blocks instead, the first engine paid the writeback of the previous case's
    stores, and the file system's inode allocator is slow for a while after many deletions
    (ext4 skips recently freed inodes), which each engine's own clean-up caused for its next run."""
    dest = os.path.join(tmp, "tar-dest")
    stores = {}
    n = [0]

    def before(name):
        if name == "tar -xzf":
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
        else:
            if name in stores:
                drop_store(stores.pop(name))
            n[0] += 1
            e = next(e for e in engines if e.name == name)
            # Short: Podman refuses a runroot over 50 characters.
            stores[name] = fresh(e, os.path.join(tmp, f"{name[0]}-{key}-{n[0]}"))
        os.sync()

    def untar():
        for layer in layers:
            sh(["tar", "-xzf", layer, "-C", dest])

    fns = {e.name: lambda name=e.name: act(stores[name]) for e in engines}
    fns["tar -xzf"] = untar
    try:
        return interleaved(fns, runs, before)
    finally:
        for f in stores.values():
            drop_store(f)
        shutil.rmtree(dest, ignore_errors=True)


def case_load(engines, images, runs, tmp, which):
    """Cold load: every run into a new, empty store (nothing to reuse)."""
    archive = oci_archive(os.path.join(images, which), os.path.join(tmp, f"{which}.tar"))
    return cold_against_tar([e for e in engines if e is not None and e.has("load")], runs, tmp,
                            f"load-{which}", lambda store: store.run("load", "-i", archive),
                            layer_blobs(os.path.join(images, which)))


def case_run_true(engines, images, runs, tmp):
    archive = oci_archive(os.path.join(images, "bb"), os.path.join(tmp, "bb.tar"))
    ref = image_id(os.path.join(images, "bb"))
    fns = {}
    for e in engines:
        if e is None or not e.has("run"):
            continue
        e.run("load", "-i", archive)
        e.run("run", "--rm", "--network", "none", ref, "true")  # warm caches
        fns[e.name] = lambda e=e: e.run("run", "--rm", "--network", "none", ref, "true")
    out = interleaved(fns, runs)
    if shutil.which("runc"):
        out["runc run (prepared bundle)"] = summary(runc_run_true(images, runs, tmp))
    return out


def layout_manifest(layout):
    """The manifest of an OCI layout's first image."""
    with open(os.path.join(layout, "index.json")) as f:
        mdigest = json.load(f)["manifests"][0]["digest"].split(":")[1]
    with open(os.path.join(layout, "blobs", "sha256", mdigest)) as f:
        return json.load(f)


def image_id(layout):
    """An image's id is its config's digest: the bb image whatever else a store holds."""
    return layout_manifest(layout)["config"]["digest"].split(":")[1][:12]


def runc_run_true(images, runs, tmp):
    """`runc run` of `true` on a bundle made once from the bb image: `runc spec`'s defaults
    (own namespaces incl. an empty network namespace), no terminal. The floor for an engine."""
    bundle = os.path.join(tmp, "runc-bundle")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs, exist_ok=True)
    layout = os.path.join(images, "bb")
    manifest = layout_manifest(layout)
    for layer in manifest["layers"]:
        sh(["tar", "-xzf", os.path.join(layout, "blobs", "sha256", layer["digest"].split(":")[1]),
            "-C", rootfs])
    sh(["runc", "spec"], cwd=bundle)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["args"] = ["true"]
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = False
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    root = os.path.join(tmp, "runc-state")
    n = [0]

    def once():
        n[0] += 1
        sh(["runc", "--root", root, "run", "--bundle", bundle, f"bench-{os.getpid()}-{n[0]}"])

    once()  # warm caches
    times = timed(once, runs)
    shutil.rmtree(bundle, ignore_errors=True)
    return times


def case_run_bridge(engines, images, runs, tmp):
    """`run --rm IMAGE true` on the default bridge network (namespace, veth, address, NAT rules
    made and removed each run, by berth; Podman's CNI keeps its bridge)."""
    archive = oci_archive(os.path.join(images, "bb"), os.path.join(tmp, "bb.tar"))
    ref = image_id(os.path.join(images, "bb"))
    fns = {}
    for e in engines:
        if e is None or not e.has("run"):
            continue
        e.run("load", "-i", archive)
        e.run("run", "--rm", ref, "true")  # warm caches, load the network driver once
        fns[e.name] = lambda e=e: e.run("run", "--rm", ref, "true")
    return interleaved(fns, runs)


def case_images_100(engines, images, runs, tmp):
    """`images` and `image inspect` with 100 images in the store (each imported from its own
    small tarball, so 100 distinct ids)."""
    src = os.path.join(tmp, "tiny")
    tarballs = []
    for i in range(100):
        d = os.path.join(src, str(i))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "file"), "w") as f:
            f.write(f"image {i}\n")
        out = os.path.join(src, f"{i}.tar")
        sh(["tar", "-C", d, "-cf", out, "."])
        tarballs.append(out)
    fns = {}
    for e in engines:
        if e is None:
            continue
        for i, t in enumerate(tarballs):
            e.run("import", t, f"localhost/tiny{i}:latest")
        fns[e.name + " images"] = lambda e=e: e.run("images")
    for e in engines:
        if e is not None:
            fns[e.name + " inspect"] = lambda e=e: e.run("image", "inspect",
                                                         "localhost/tiny50:latest")
    return interleaved(fns, runs)


def loaded(e, images, tmp):
    """Loads the bb image into `e`'s store once; -> its id."""
    archive = os.path.join(tmp, "bb.tar")
    if not os.path.exists(archive):
        oci_archive(os.path.join(images, "bb"), archive)
    ident = image_id(os.path.join(images, "bb"))
    if ident not in e.run("images", "-q").stdout.split():
        e.run("load", "-i", archive)
    return ident


def case_create_start_stop_rm(engines, images, runs, tmp):
    """create, start, stop -t 0 (SIGKILL at once: no grace period measured), rm of one container,
    no network."""
    fns = {}
    for e in engines:
        if e is None:
            continue
        ref = loaded(e, images, tmp)

        def cycle(e=e, ref=ref):
            cid = e.run("create", "--network", "none", ref, "sleep", "1000").stdout.strip()
            e.run("start", cid)
            e.run("stop", "-t", "0", cid)
            e.run("rm", cid)
        cycle()  # warm caches
        fns[e.name] = cycle
    return interleaved(fns, runs)


def case_exec_true(engines, images, runs, tmp):
    """`exec CTR true` into a running container."""
    fns, running = {}, {}
    for e in engines:
        if e is None:
            continue
        ref = loaded(e, images, tmp)
        cid = e.run("run", "-d", "--network", "none", ref, "sleep", "1000").stdout.strip()
        running[e] = cid
        e.run("exec", cid, "true")
        fns[e.name] = lambda e=e, cid=cid: e.run("exec", cid, "true")
    out = interleaved(fns, runs)
    for e, cid in running.items():
        e.run("rm", "-f", "-t", "0", cid)
    return out


def case_ps_a_100(engines, images, runs, tmp):
    """`ps -a` with 100 created containers."""
    fns, made = {}, {}
    for e in engines:
        if e is None:
            continue
        ref = loaded(e, images, tmp)
        made[e] = [e.run("create", "--network", "none", ref, "true").stdout.strip()
                   for _ in range(100)]
        e.run("ps", "-a")
        fns[e.name] = lambda e=e: e.run("ps", "-a")
    out = interleaved(fns, runs)
    for e, ids in made.items():
        e.run("rm", "-f", *ids)
    return out


def smaps_kb(pid):
    """Rss and Pss (kB) of a process from /proc/PID/smaps_rollup."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                vals[parts[0][:-1].lower()] = int(parts[1])
    return vals


def case_monitor_mem(engines, images, runs, tmp):
    """Memory of the per-container monitor (berth-monitor, conmon) of a running container: RSS and
    PSS from smaps_rollup, the mean over `runs` containers running at once (PSS shares the pages
    of the binary among them)."""
    out = {}
    for e in engines:
        if e is None:
            continue
        ref = loaded(e, images, tmp)
        n = max(runs, 1)
        ids = [e.run("run", "-d", "--network", "none", ref, "sleep", "1000").stdout.strip()
               for _ in range(n)]
        rss, pss = [], []
        for cid in ids:
            info = json.loads(e.run("container", "inspect", cid).stdout)[0]
            m = smaps_kb(info["State"]["ConmonPid"])
            rss.append(m["rss"])
            pss.append(m["pss"])
        out[e.name + " rss"] = {"kb": statistics.mean(rss), "runs": n}
        out[e.name + " pss"] = {"kb": statistics.mean(pss), "runs": n}
        e.run("rm", "-f", "-t", "0", *ids)
    return out


CASES = {
    "images-100": case_images_100,
    "load-deb": lambda en, im, r, t: case_load(en, im, r, t, "deb"),
    "load-multi": lambda en, im, r, t: case_load(en, im, r, t, "multi"),
    "run-true": case_run_true,
    "run-bridge": case_run_bridge,
    "create-start-stop-rm": case_create_start_stop_rm,
    "exec-true": case_exec_true,
    "ps-a-100": case_ps_a_100,
    "monitor-mem": case_monitor_mem,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "images"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bb-", dir="/var/tmp")
    results = {}
    try:
        berth, podman = make_engines(tmp)
        if podman is None:
            print("podman not installed (apt-get install podman runc): berth figures only",
                  file=sys.stderr)
        for name, fn in CASES.items():
            if args.only and name not in args.only.split(","):
                continue
            results[name] = fn([berth, podman], args.images, args.runs, tmp)
            r = results[name]
            line = f"{name:14}"
            for k, v in r.items():
                if "kb" in v:
                    line += f"  {k}: {v['kb']:8.0f} kB"
                    continue
                line += f"  {k}: min {v['min']*1000:8.1f} ms, median {v['median']*1000:8.1f} ms"
            for suffix in (" rss", " pss"):
                b, p = "berth" + suffix, "podman" + suffix
                if b in r and p in r:
                    line += f"  conmon/berth-monitor{suffix}: {r[p]['kb'] / r[b]['kb']:.2f}x"
            for suffix in ("", " images", " inspect"):
                b, p = "berth" + suffix, "podman" + suffix
                if b in r and p in r:
                    line += f"  podman/berth{suffix} (min): {r[p]['min'] / r[b]['min']:.2f}x"
            if "berth" in r and "runc run (prepared bundle)" in r:
                line += (f"  berth/runc (min): "
                         f"{r['berth']['min'] / r['runc run (prepared bundle)']['min']:.2f}x")
            if "berth" in r and "tar -xzf" in r:
                line += f"  berth/tar (min): {r['berth']['min'] / r['tar -xzf']['min']:.2f}x"
            print(line, flush=True)
    finally:
        for eng in ("berth", "podman"):
            unmount_under(os.path.join(tmp, eng))
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
