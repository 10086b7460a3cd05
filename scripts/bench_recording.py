#!/usr/bin/env python3
"""Recording throughput and peak RSS: ours against the Python baseline, side by side.

Serves generated files from a local HTTP server with Range support: with --gen-cmd, real mp4s
(audio track, moov last) that the processor's media check accepts, written by that command with
the filler as a hole; without it, sparse files of zeros (enough for the baseline and the ceiling
only). The files cost no disk either way. Then for each size and run, in alternation:
  - ceiling:  a plain download of the file to /dev/null (curl), what loopback and the server allow;
  - baseline: scripts/bench_baseline.py (requests to a temp file, then boto3 upload_file);
  - upload:   the command in --upload-cmd, if given: the same bytes, made in memory, through
              our multipart uploader into the emulator, with no download: what the emulator
              allows. With the ceiling it bounds any streaming job: it cannot beat the slower
              of the two;
  - disk:     with --disk-dir, the same number of bytes written to a file in that directory (dd
              from /dev/zero, no fsync, as the S3 server writes): what the disk under a
              file-backed S3 server (s3s-fs) allows;
  - ours:     the command in --ours-cmd (the recording processor's streaming download and
              multipart upload), if given. It stores under a key of its own choosing and says
              where on a line `STORED <bucket> <key>`; it may also print `RESULT <s> <VmHWM KiB>`.
              (--upload-cmd prints the same lines.)
Each job runs as a child process; wall time and peak RSS (GNU time's %M, the same for every
job) are measured from outside, and the uploaded object's size is checked in the emulator.

    bench_recording.py --endpoint URL --out results.json [--sizes 64M,512M,2G] [--runs 3]
        [--big-runs 1] [--ours-cmd 'CMD with {url} {bucket} {key} {endpoint} {size}']
        [--upload-cmd 'CMD with {bucket} {size} {endpoint}']
        [--gen-cmd 'CMD with {size} {path}'] [--disk-dir DIR] [--s3-name moto]
"""

import argparse
import http.server
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024
UNITS = {"K": 1024, "M": MIB, "G": 1024 * MIB}


def parse_size(text):
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in UNITS:
        return int(text[:-1]) * UNITS[text[-1]]
    return int(text)


def label(size):
    return f"{size // (1024 * MIB)} GiB" if size % (1024 * MIB) == 0 else f"{size // MIB} MiB"


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support, sent with sendfile (the server is not the limit)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_file(head=False)

    def do_HEAD(self):
        self.send_file(head=True)

    def send_file(self, head):
        path = self.translate_path(self.path.split("?", 1)[0])
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        status = 200
        header = self.headers.get("Range")
        if header and header.startswith("bytes="):
            first, _, last = header[6:].split(",")[0].partition("-")
            try:
                if first:
                    start = int(first)
                    end = min(int(last), size - 1) if last else size - 1
                else:
                    start = max(size - int(last), 0)
            except ValueError:
                self.send_error(400)
                return
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        self.wfile.flush()
        with open(path, "rb") as f:
            try:
                self.connection.sendfile(f, start, length)
            except (BrokenPipeError, ConnectionResetError):
                pass


def serve(directory):
    handler = lambda *a, **kw: RangeHandler(*a, directory=directory, **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


GNU_TIME = "/usr/bin/time"


def run_job(argv, env):
    """Runs argv; returns (seconds, peak RSS KiB, exit status, stdout tail, stderr tail).

    Peak RSS comes from GNU time when installed: a child forked from this Python process would
    carry this process's RSS into its ru_maxrss (the high-water mark survives exec), which GNU
    time, a small process, avoids. Without it, wait4's figure is an upper bound.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r") as rss_file:
        use_time = os.access(GNU_TIME, os.X_OK)
        if use_time:
            argv = [GNU_TIME, "-f", "%M", "-o", rss_file.name] + list(argv)
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss = usage.ru_maxrss
        if use_time:
            lines = [line.strip() for line in rss_file.read().splitlines() if line.strip()]
            if lines and lines[-1].isdigit():
                rss = int(lines[-1])
        out.seek(0)
        err.seek(0)
        return (seconds, rss, proc.returncode,
                out.read()[-2000:].decode(errors="replace"), err.read()[-2000:].decode(errors="replace"))


def copies(args, env, s3, bucket):
    """The server-side copy path: per size and kind of copy, one job, its time, peak RSS and the
    bytes that went through the process (MOVED)."""
    out = []
    for size in [parse_size(x) for x in args.copy_sizes.split(",") if x.strip()]:
        for how in [h for h in args.copy_hows.split(",") if h.strip()]:
            argv = shlex.split(args.copy_cmd.format(bucket=bucket, size=size, how=how, endpoint=args.endpoint))
            seconds, rss, code, stdout, err = run_job(argv, env)
            row = {"size": size, "label": label(size), "how": how, "seconds": seconds,
                   "peak_rss_mib": rss / 1024, "failures": []}
            stored = None
            for line in stdout.splitlines():
                if line.startswith("STORED "):
                    _, b, k = line.split(" ", 2)
                    stored = (b, k)
                elif line.startswith("MOVED ") and line.split()[1].isdigit():
                    row["moved_bytes"] = int(line.split()[1])
                elif line.startswith("RESULT "):
                    fields = line.split()
                    row["job_seconds"] = float(fields[1])
            if code != 0 or stored is None:
                row["failures"].append(f"exit {code}: {err.strip()[-400:] or stdout.strip()[-400:]}")
            else:
                try:
                    row["stored_bytes"] = s3.head_object(Bucket=stored[0], Key=stored[1])["ContentLength"]
                    s3.delete_object(Bucket=stored[0], Key=stored[1])
                except Exception as e:  # report, do not crash the whole benchmark
                    row["failures"].append(f"head_object failed: {e}")
                if row.get("stored_bytes") != size:
                    row["failures"].append(f"stored {row.get('stored_bytes')} of {size} bytes")
            print(f"copy {args.s3_name} {label(size):>8} {how:<9}: {'ok' if not row['failures'] else 'FAILED'} "
                  f"{seconds:.2f} s, moved {row.get('moved_bytes', 0) / 1024:.0f} KiB, peak RSS {rss / 1024:.1f} MiB",
                  file=sys.stderr)
            out.append(row)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="64M,512M,2G")
    ap.add_argument("--runs", type=int, default=3, help="runs per size up to 1 GiB")
    ap.add_argument("--big-runs", type=int, default=1, help="runs per size above 1 GiB")
    ap.add_argument("--ours-cmd", default=os.environ.get("RECORDING_OURS_CMD", ""))
    ap.add_argument("--upload-cmd", default="", help="uploads {size} bytes from memory into {bucket}")
    ap.add_argument("--gen-cmd", default="", help="writes an mp4 of {size} bytes at {path}")
    ap.add_argument("--workdir", default=None, help="where the files are generated (default: a temp dir)")
    ap.add_argument("--disk-dir", default="",
                    help="adds the disk-write ceiling: the bytes written to a file in this directory")
    ap.add_argument("--s3-name", default="moto", help="which S3 server --endpoint is (for the report)")
    ap.add_argument("--copy-cmd", default="",
                    help="the server-side copy job: 'CMD with {bucket} {size} {how}'; it prints "
                         "STORED, RESULT and MOVED <bytes through the process>")
    ap.add_argument("--copy-sizes", default="2G")
    ap.add_argument("--copy-hows", default="s3-key,part-copy,in-place")
    args = ap.parse_args()
    if not args.endpoint:
        sys.exit("AWS_ENDPOINT_URL is not set: run scripts/bench, which starts the emulator")

    env = dict(os.environ, AWS_ENDPOINT_URL=args.endpoint,
               AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
               AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
               AWS_REGION=os.environ.get("AWS_REGION", "us-east-1"),
               AWS_DEFAULT_REGION=os.environ.get("AWS_REGION", "us-east-1"))
    s3 = boto3.client("s3", endpoint_url=args.endpoint, region_name=env["AWS_REGION"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                      config=Config(s3={"addressing_style": "path"}))
    bucket = f"reflector-bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)

    workdir = tempfile.mkdtemp(prefix="reflector-bench-files-", dir=args.workdir)
    server = serve(workdir)
    port = server.server_address[1]
    results = {"ours_cmd": args.ours_cmd, "upload_cmd": args.upload_cmd, "gen_cmd": args.gen_cmd,
               "s3": args.s3_name, "disk_dir": args.disk_dir, "sizes": []}
    try:
        for size in [parse_size(s) for s in args.sizes.split(",") if s.strip()]:
            name = f"recording-{size}.mp4"
            path = os.path.join(workdir, name)
            if args.gen_cmd:
                subprocess.run(shlex.split(args.gen_cmd.format(size=size, path=path)), check=True)
                if os.path.getsize(path) != size:
                    sys.exit(f"--gen-cmd wrote {os.path.getsize(path)} bytes, not {size}")
            else:
                with open(path, "wb") as f:
                    f.truncate(size)  # sparse: no disk blocks, reads are zeros
            url = f"http://127.0.0.1:{port}/{name}"
            runs = args.runs if size <= 1024 * MIB else args.big_runs
            row = {"size": size, "label": label(size), "runs": runs, "jobs": {}}
            jobs = {
                "ceiling": ["curl", "-sS", "-f", "-o", "/dev/null", url],
                "baseline": [sys.executable, os.path.join(ROOT, "scripts", "bench_baseline.py"), url, bucket, "{key}"],
            }
            if args.disk_dir:
                # Whole 1 MiB blocks: every size here is a multiple of 1 MiB.
                jobs["disk"] = ["dd", "if=/dev/zero", f"of={os.path.join(args.disk_dir, '.bench-disk-ceiling')}",
                                "bs=1M", f"count={size // MIB}", "status=none"]
            commands = {}
            if args.upload_cmd:
                commands["upload"] = args.upload_cmd
            if args.ours_cmd:
                commands["ours"] = args.ours_cmd
            for job in commands:
                jobs[job] = job
            for run in range(runs):
                # Each run starts one job later, so no job always follows the same one (an
                # upload leaves the emulator busy freeing the previous object for a moment).
                names = list(jobs)
                order = names[run % len(names):] + names[:run % len(names)]
                for job in order:
                    argv = jobs[job]
                    key = f"{job}/{run}/{name}"
                    if job in commands:
                        argv = shlex.split(commands[job].format(
                            url=url, bucket=bucket, key=key, endpoint=args.endpoint, size=size))
                    else:
                        argv = [a.replace("{key}", key) for a in argv]
                    seconds, rss, code, out, err = run_job(argv, env)
                    ok = code == 0
                    uploaded = None
                    self_rss = None
                    stored_bucket = bucket
                    for line in out.splitlines():
                        # Ours chooses its own key (the processor's layout) and says where.
                        if line.startswith("STORED "):
                            _, stored_bucket, key = line.split(" ", 2)
                        elif line.startswith("RESULT "):
                            fields = line.split()
                            if len(fields) >= 3 and fields[2].isdigit():
                                self_rss = int(fields[2])
                    if job == "disk":
                        try:
                            os.remove(os.path.join(args.disk_dir, ".bench-disk-ceiling"))
                        except OSError:
                            pass
                    if ok and job not in ("ceiling", "disk"):
                        try:
                            uploaded = s3.head_object(Bucket=stored_bucket, Key=key)["ContentLength"]
                            s3.delete_object(Bucket=stored_bucket, Key=key)
                        except Exception as e:  # report, do not crash the whole benchmark
                            err += f"\nhead_object failed: {e}"
                        ok = uploaded == size
                    entry = row["jobs"].setdefault(job, {"seconds": [], "rss_kib": [], "self_rss_kib": [], "failures": []})
                    if ok:
                        entry["seconds"].append(seconds)
                        entry["rss_kib"].append(rss)
                        if self_rss is not None:
                            entry["self_rss_kib"].append(self_rss)
                    else:
                        entry["failures"].append(
                            f"exit {code}, uploaded {uploaded} of {size} bytes: {err.strip()[-400:] or out.strip()[-400:]}")
                    print(f"recording {args.s3_name} {label(size):>8} {job:<8} run {run + 1}/{runs}: "
                          f"{'ok' if ok else 'FAILED'} {seconds:.2f} s, peak RSS {rss / 1024:.1f} MiB",
                          file=sys.stderr)
            for entry in row["jobs"].values():
                if entry["seconds"]:
                    med = statistics.median(entry["seconds"])
                    entry["median_s"] = med
                    entry["mib_per_s"] = size / MIB / med
                    entry["peak_rss_mib"] = max(entry["rss_kib"]) / 1024
                    if entry["self_rss_kib"]:
                        entry["self_peak_rss_mib"] = max(entry["self_rss_kib"]) / 1024
            os.remove(os.path.join(workdir, name))
            results["sizes"].append(row)
        results["copies"] = copies(args, env, s3, bucket) if args.copy_cmd else []
    finally:
        server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
            s3.delete_bucket(Bucket=bucket)
        except Exception:
            pass
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
