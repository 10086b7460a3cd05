#!/usr/bin/env python3
"""Tests of scripts/bench_report.py on result files shaped like the real ones (run by
scripts/test): the report is what BENCHMARKS.md says, so a result it cannot read must not turn
into "not run" or into a wrong figure silently."""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_report  # noqa: E402


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f)


def criterion_result(root, function_id, median_ns):
    """What criterion writes for `webhook/<function_id>`: the id flattened into the directory."""
    d = os.path.join(root, "webhook", function_id.replace("/", "_"), "new")
    write_json(os.path.join(d, "benchmark.json"), {
        "group_id": "webhook", "function_id": function_id,
        "full_id": f"webhook/{function_id}", "directory_name": f"webhook/{function_id.replace('/', '_')}",
    })
    write_json(os.path.join(d, "estimates.json"), {"median": {"point_estimate": median_ns}})


def recording_size(label, size, seconds):
    return {"size": size, "label": label, "runs": 1, "jobs": {
        job: {"seconds": [s], "median_s": s, "mib_per_s": size / bench_report.MIB / s,
              "peak_rss_mib": rss, "rss_kib": [int(rss * 1024)], "failures": []}
        for job, (s, rss) in seconds.items()}}


def cold_case(median, outcomes=None, baseline=None, label=None):
    r = {"function": "rooms-api", "case": "aws", "exercises": "x", "runs": 4,
         "first_response_median_ms": median, "first_response_p90_ms": median,
         "init_median_ms": 1.0, "outcomes": outcomes or {"HTTP 200": 4}}
    if label:
        r["baseline_label"] = label
    if baseline is not None:
        r["baseline"] = baseline
    return r


class ColdStartBaseline(unittest.TestCase):
    def test_the_ratio_of_medians_decides_not_slower(self):
        faster = cold_case(10.0, baseline=cold_case(12.0), label="deaa497")
        slower = cold_case(13.0, baseline=cold_case(12.0), label="deaa497")
        self.assertEqual(bench_report.baseline_row(faster)[3], "yes")
        self.assertIn("0.83", bench_report.baseline_row(faster)[2])
        self.assertEqual(bench_report.baseline_row(slower)[3], "no")

    def test_other_answers_or_a_missing_function_are_not_compared(self):
        other = cold_case(10.0, baseline=cold_case(1.0, {"HTTP 404": 4}), label="deaa497")
        self.assertIn("not comparable", bench_report.baseline_row(other)[2])
        new_function = cold_case(10.0, label="deaa497")
        self.assertIn("nothing to compare", bench_report.baseline_row(new_function)[2])

    def test_a_response_body_with_more_fields_is_the_same_answer(self):
        base = cold_case(10.0, {'response {"checked":3}': 4})
        ours = cold_case(9.0, {'response {"checked":3,"presence_checked":2}': 4}, base, "r")
        self.assertEqual(bench_report.baseline_row(ours)[3], "yes")

    def test_other_aws_requests_are_other_work_not_a_slowdown(self):
        base = cold_case(10.0)
        base["aws_calls_first_run"] = {"DynamoDB.Query": 2}
        ours = cold_case(20.0, baseline=base, label="deaa497")
        ours["aws_calls_first_run"] = {"DynamoDB.Query": 2, "DynamoDB.GetItem": 1}
        row = bench_report.baseline_row(ours)
        self.assertEqual(row[3], "- (other work)")
        self.assertIn("GetItem", row[2])

    def test_rows_appear_only_with_a_baseline(self):
        rows, _ = bench_report.coldstart_rows([cold_case(10.0)])
        self.assertEqual(len(rows), 1)
        rows, _ = bench_report.coldstart_rows([cold_case(10.0, baseline=cold_case(9.0), label="r")])
        self.assertEqual([r[3] for r in rows], ["yes", "no"])


class ColdStartSplit(unittest.TestCase):
    def test_the_time_waiting_on_aws_is_shown_when_there_was_any(self):
        case = cold_case(10.0)
        case["init_median_ms"] = 4.0
        case["aws_wait_median_ms"] = 3.5
        case["own_median_ms"] = 6.5
        rows, _ = bench_report.coldstart_rows([case])
        self.assertIn("(init 4.0 ms, waiting on AWS 3.5 ms, own 6.5 ms)", rows[0][2])
        case["aws_wait_median_ms"] = 0.0
        rows, _ = bench_report.coldstart_rows([case])
        self.assertNotIn("waiting on AWS", rows[0][2])


class JoinRows(unittest.TestCase):
    def test_counts_dynamodb_and_daily_requests_of_the_join_case(self):
        join = cold_case(5.0)
        join["case"] = "join"
        join["aws_calls_first_run"] = {"DynamoDB.Query": 1, "DynamoDB.GetItem": 1}
        join["platform_calls_first_run"] = {}
        rows = bench_report.join_rows([cold_case(5.0), join])
        self.assertEqual([(r[0], r[3]) for r in rows],
                         [("DynamoDB requests per join", "yes"),
                          ("Daily requests per join (domain id configured)", "yes")])
        join["aws_calls_first_run"]["DynamoDB.GetItem"] = 2
        join["platform_calls_first_run"] = {"GET /v1/": 1}
        self.assertEqual([r[3] for r in bench_report.join_rows([join])], ["no", "no"])


class TokenRows(unittest.TestCase):
    def test_reads_the_flattened_token_directory(self):
        with tempfile.TemporaryDirectory() as root:
            self.assertEqual(bench_report.token_rows(root)[0][2], "not run")
            d = os.path.join(root, "token", "join_daily", "new")
            write_json(os.path.join(d, "estimates.json"), {"median": {"point_estimate": 3500.0}})
            row = bench_report.token_rows(root)[0]
            self.assertEqual((row[2], row[3]), ("median 3.50 us", "yes"))


class WebhookRows(unittest.TestCase):
    def test_reads_criterions_flattened_directories(self):
        with tempfile.TemporaryDirectory() as root:
            criterion_result(root, "full/daily-real", 2070.0)
            criterion_result(root, "full/whereby", 51_000.0)
            criterion_result(root, "verify/daily-real", 870.0)
            rows = {r[0]: r for r in bench_report.webhook_rows(root)}
        full = rows["Webhook verify + parse + dispatch daily-real (CPU)"]
        self.assertEqual(full[2], "median 2.07 us")
        self.assertEqual(full[3], "yes")
        self.assertEqual(rows["Webhook verify + parse + dispatch whereby (CPU)"][3], "no")
        self.assertEqual(rows["Webhook verify daily-real (CPU)"][2], "median 0.87 us")

    def test_an_unreadable_layout_is_an_error_not_not_run(self):
        with tempfile.TemporaryDirectory() as root:
            write_json(os.path.join(root, "webhook", "x", "new", "estimates.json"), {})
            rows = bench_report.webhook_rows(root)
        self.assertEqual(rows[0][2], "not run")
        self.assertEqual(bench_report.unread_parts(rows, ["webhook"]), ["webhook"])

    def test_parts_with_figures_are_not_reported_missing(self):
        with tempfile.TemporaryDirectory() as root:
            criterion_result(root, "full/daily-seed", 1600.0)
            rows = bench_report.webhook_rows(root)
        self.assertEqual(bench_report.unread_parts(rows, ["webhook"]), [])
        self.assertEqual(bench_report.unread_parts(rows, ["webhook", "sizes"]), ["sizes"])


class SizeSummary(unittest.TestCase):
    def test_span_and_largest_come_from_the_byte_counts(self):
        rows = bench_report.size_rows({"arch": "arm64", "note": "", "functions": [
            {"function": "a", "bootstrap_bytes": 9_000_000, "zip_bytes": 4_000_000},
            {"function": "b", "bootstrap_bytes": 10_500_000, "zip_bytes": 4_500_000},
            {"function": "c", "bootstrap_bytes": 7_600_000, "zip_bytes": 3_300_000},
        ]})
        summary = bench_report.budget_summary(rows)
        line = next(l for l in summary.splitlines() if l.startswith("| arm64"))
        self.assertIn("3 functions; bootstrap 7.25-10.01 MiB, largest b: bootstrap 10,500,000 B", line)
        self.assertTrue(line.endswith("| reported |"))


class RecordingRows(unittest.TestCase):
    def test_throughput_is_judged_against_the_slower_ceiling(self):
        mib = bench_report.MIB
        near = recording_size("64 MiB", 64 * mib, {
            "ceiling": (0.1, 11.0), "upload": (1.0, 40.0), "baseline": (2.0, 90.0), "ours": (1.2, 45.0)})
        slow = recording_size("512 MiB", 512 * mib, {
            "ceiling": (0.5, 11.0), "upload": (4.0, 48.0), "baseline": (6.0, 91.0), "ours": (8.0, 50.0)})
        rows = {r[0]: r for r in bench_report.recording_rows(
            {"ours_cmd": "x", "upload_cmd": "y", "sizes": [near, slow]})}
        ours = rows["Recording 64 MiB: ours"]
        self.assertIn("83% of the pipeline ceiling (64 MiB/s", ours[2])
        self.assertEqual(ours[3], "yes")
        self.assertIn("ours/baseline: time 0.60", ours[2])
        self.assertEqual(rows["Recording 512 MiB: ours"][3], "no (under 70% of the pipeline ceiling)")
        self.assertIn("Recording 64 MiB: emulator upload ceiling (our uploader, bytes from memory, no download)",
                      rows)
        flat = rows["Recording peak RSS, ours: 512 MiB / 64 MiB"]
        self.assertEqual(flat[3], "yes")

    def test_memory_over_budget_fails_even_when_fast(self):
        mib = bench_report.MIB
        big = recording_size("2 GiB", 2048 * mib, {
            "ceiling": (2.0, 11.0), "upload": (20.0, 48.0), "baseline": (30.0, 92.0), "ours": (20.0, 130.0)})
        rows = {r[0]: r for r in bench_report.recording_rows({"ours_cmd": "x", "sizes": [big]})}
        self.assertEqual(rows["Recording 2 GiB: ours"][3], "no (RSS)")


class FastS3Rows(unittest.TestCase):
    def fast(self, ours_s, ours_rss=40.0, disk_s=0.2):
        mib = bench_report.MIB
        return recording_size("2 GiB", 2048 * mib, {
            "ceiling": (1.0, 11.0), "disk": (disk_s, 3.0), "upload": (2.0, 40.0),
            "baseline": (10.0, 90.0), "ours": (ours_s, ours_rss)})

    def rows(self, size):
        return {r[0]: r for r in bench_report.fast_s3_rows({"ours_cmd": "x", "sizes": [size]})}

    def test_ours_is_judged_against_the_baseline_and_the_slower_ceiling(self):
        # Download 2048 MiB/s, disk 10240 MiB/s: the download is the slower ceiling.
        ours = self.rows(self.fast(1.5))["Recording on s3s-fs 2 GiB: ours"]
        self.assertEqual(ours[3], "yes")
        self.assertIn("ours/baseline: throughput 6.67x", ours[2])
        self.assertIn("67% of the slower ceiling (download, 2048 MiB/s)", ours[2])

    def test_each_missed_target_is_named(self):
        slow = self.rows(self.fast(6.0, ours_rss=70.0))["Recording on s3s-fs 2 GiB: ours"]
        self.assertEqual(slow[3], "no (1.67x the baseline, 17% of the slower ceiling, RSS 70.0 MiB)")

    def test_the_disk_is_the_ceiling_when_it_is_slower(self):
        ours = self.rows(self.fast(3.0, disk_s=4.0))["Recording on s3s-fs 2 GiB: ours"]
        self.assertIn("of the slower ceiling (disk write, 512 MiB/s)", ours[2])
        self.assertIn("Recording on s3s-fs 2 GiB: disk-write ceiling (dd to s3s-fs's disk)", self.rows(self.fast(3.0)))

    def test_a_missing_run_is_not_run(self):
        self.assertEqual(bench_report.fast_s3_rows(None)[0][2], "not run")


class CopyRows(unittest.TestCase):
    def copy(self, moved, failures=()):
        return {"s3": "s3s-fs", "copies": [{
            "size": 2048 * bench_report.MIB, "label": "2 GiB", "how": "s3-key", "seconds": 3.0,
            "job_seconds": 1.5, "peak_rss_mib": 20.0, "moved_bytes": moved, "failures": list(failures)}]}

    def test_only_the_range_reads_may_pass_through(self):
        row = bench_report.copy_rows(self.copy(300 * 1024))[0]
        self.assertEqual(row[0], "Server-side copy on s3s-fs 2 GiB: Daily s3_key recording, CopyObject")
        self.assertIn("300 KiB of S3 request and response bodies through the job", row[2])
        self.assertIn("in 1.50 s (job", row[2])
        self.assertEqual(row[3], "yes")
        self.assertEqual(bench_report.copy_rows(self.copy(64 * bench_report.MIB))[0][3], "no")

    def test_a_failed_copy_says_why(self):
        row = bench_report.copy_rows(self.copy(0, ["exit 1: NotImplemented"]))[0]
        self.assertEqual((row[2], row[3]), ("failed: exit 1: NotImplemented", "no"))


class LoadRows(unittest.TestCase):
    def data(self, failed=0):
        run = lambda rps, n: {"requests": n, "requests_per_s": rps, "p50_ms": 20.0, "p99_ms": 80.0,
                              "statuses": {"200": n - failed}, "errors": {"connection reset": failed} if failed else {},
                              "failed": failed}
        api = run(500.0, 15000)
        api.update({"aws_calls": {"DynamoDB.GetItem": 37500}, "dynamodb_per_request": 2.5})
        return {"clients": 50, "seconds": 30, "rooms": 10, "api": api, "emulator": run(2500.0, 75000),
                "per_call": {"get_or_create": {"DynamoDB.GetItem": 3}, "join": {"DynamoDB.GetItem": 2, "SQS.SendMessage": 0}}}

    def test_errors_fail_the_run_and_the_ceiling_share_is_given(self):
        rows = {r[0]: r for r in bench_report.load_rows(self.data())}
        api = rows["HTTP API under load: get-or-create + join (50 clients, 30 s, 10 rooms)"]
        self.assertEqual(api[3], "yes")
        self.assertIn("500 requests/s, p50 20.0 ms, p99 80.0 ms", api[2])
        self.assertIn("DynamoDB 2.50 requests per call", api[2])
        ceiling = rows["HTTP API under load: the emulator alone, DynamoDB GetItem (50 clients, 30 s, 10 rooms)"]
        self.assertIn("1250 DynamoDB requests/s, 50% of this ceiling", ceiling[2])
        self.assertEqual(rows["DynamoDB requests per join call (active meeting, under load's set-up)"][2],
                         "2 (GetItem x2)")
        failing = bench_report.load_rows(self.data(failed=3))[0]
        self.assertEqual(failing[3], "no")
        self.assertIn("connection reset x3", failing[2])


if __name__ == "__main__":
    unittest.main()
