#!/usr/bin/env python3
"""The comparison baseline for the recording job: the original Python approach.

Downloads URL to a temporary file on disk with a streaming HTTP client (requests), then uploads
that file with boto3's upload_file (its default managed multipart transfer) to s3://BUCKET/KEY
at $AWS_ENDPOINT_URL, and deletes the file. Prints one JSON line: bytes and seconds per phase.

    scripts/bench_baseline.py URL BUCKET KEY
"""

import json
import os
import sys
import tempfile
import time

import boto3
import requests
from botocore.config import Config

CHUNK = 1024 * 1024


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, bucket, key = sys.argv[1:4]
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        print("AWS_ENDPOINT_URL is not set: run scripts/bench, which starts the emulator", file=sys.stderr)
        return 2
    s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    start = time.monotonic()
    size = 0
    with tempfile.NamedTemporaryFile(prefix="reflector-baseline-") as tmp:
        with requests.get(url, stream=True, timeout=60) as response:
            response.raise_for_status()
            for chunk in response.iter_content(chunk_size=CHUNK):
                tmp.write(chunk)
                size += len(chunk)
        tmp.flush()
        downloaded = time.monotonic()
        s3.upload_file(tmp.name, bucket, key)
    done = time.monotonic()
    print(json.dumps({
        "bytes": size,
        "download_s": round(downloaded - start, 3),
        "upload_s": round(done - downloaded, 3),
        "total_s": round(done - start, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
