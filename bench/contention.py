"""Whole-process vqzip on a busy machine: the idle/busy table and the --jobs throughput.

    python bench/contention.py ../shared/data/kodak/kodim01.png                # the table, 5 runs each
    python bench/contention.py IMG --batch ../shared/data/kodak                # and --jobs throughput
    python bench/contention.py IMG --vqzip "python ~/vqzip-runs/vqzip_at.py ~/vqzip-runs/code-071f763"  # another build

Each situation runs `vqzip decompress` (and `compress`) of one image as a new process, `--runs`
times, and reports the mean and the worst wall time: idle; one core kept busy by a spinning
process; every core kept busy; two vqzip processes started at once (the time for the pair).
Each with the default threads and with `--threads 1`. `--batch DIR` also times compressing
every image of DIR serially in one process and with `--jobs N`. Run it on an otherwise idle
machine: anything else running is part of the measurement.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def spinners(n: int):
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def timed(cmds: list[list[str]]) -> float:
    """Wall seconds for these commands started together, until the last one ends."""
    t = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p, c in zip(procs, cmds):
        if p.wait() != 0:
            raise SystemExit(f"failed: {shlex.join(c)}\n{p.stderr.read().decode()}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vqzip", default=f"{shlex.quote(sys.executable)} -m vqzip", help="how to run vqzip [default: this python's]")
    ap.add_argument("--batch", type=Path, help="a folder of images for the --jobs throughput")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    vq = shlex.split(os.path.expanduser(args.vqzip))
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp())
    try:
        src = tmp / "in.png"
        shutil.copy(args.image, src)
        coded = tmp / "in.vqz"
        subprocess.run(vq + ["compress", "-q", "-f", str(src), "-o", str(coded)], check=True)
        print(f"{args.image.name}, {args.runs} runs each, {cores} cores; mean (worst) wall seconds of a whole process")
        print(f"{'situation':<34} {'command':<11} {'default':>16} {'--threads 1':>16}")
        situations = [("idle", 0, 1), ("one core busy", 1, 1), (f"all {cores} cores busy", cores, 1),
                      ("two at once (the pair)", 0, 2)]
        for what, busy, copies in situations:
            for command in ("decompress", "compress"):
                cells = []
                for threads in ([], ["--threads", "1"]):
                    def cmd(k):
                        if command == "decompress":
                            return vq + ["decompress", "-q", "-f", *threads, str(coded), "-o", str(tmp / f"out{k}.png")]
                        return vq + ["compress", "-q", "-f", *threads, str(src), "-o", str(tmp / f"out{k}.vqz")]
                    with spinners(busy):
                        times = [timed([cmd(k) for k in range(copies)]) for _ in range(args.runs)]
                    cells.append(f"{statistics.mean(times):6.2f} ({max(times):6.2f})")
                print(f"{what:<34} {command:<11} {cells[0]:>16} {cells[1]:>16}", flush=True)
        if args.batch:
            images = sorted(p for p in args.batch.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
            # serial: one process (--jobs 1 where the build has --jobs, whose default is one job per core)
            has_jobs = "--jobs" in subprocess.run(vq + ["compress", "--help"], capture_output=True, text=True).stdout
            serial = timed([vq + ["compress", "-q", "-f", *(["--jobs", "1"] if has_jobs else []), *map(str, images),
                                  "-o", str(tmp / "serial") + "/"]])
            line = f"\n{len(images)} images compressed by one command: serial {serial:.1f} s"
            if has_jobs:
                jobs = timed([vq + ["compress", "-q", "-f", "--jobs", str(args.jobs), *map(str, images),
                                    "-o", str(tmp / "jobs") + "/"]])
                same = all((tmp / "serial" / p.with_suffix(".vqz").name).read_bytes()
                           == (tmp / "jobs" / p.with_suffix(".vqz").name).read_bytes() for p in images)
                line += f", --jobs {args.jobs} {jobs:.1f} s: {serial / jobs:.2f}x the throughput; identical bytes: {same}"
            print(line)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
