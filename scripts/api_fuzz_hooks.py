"""schemathesis hooks of scripts/api-fuzz's user pass: signs every webhook request with the
secrets reflector-local runs with, so generated bodies reach the webhooks' parsers and apply steps
instead of stopping at 401. The signatures are those of shared/src/webhook/signature.rs: Daily's
X-Webhook-Signature (base64 HMAC-SHA256 of "<ts>.<body>" under the base64-decoded secret) with
X-Webhook-Timestamp, and Whereby's "t=<ts>,v1=<hex HMAC-SHA256 of '<ts>.<body>'>"."""

import base64
import hashlib
import hmac
import json
import os
import time

import schemathesis

DAILY_SECRET = base64.b64decode(os.environ["API_FUZZ_DAILY_SECRET"])
WHEREBY_SECRET = os.environ["API_FUZZ_WHEREBY_SECRET"].encode()


def body_bytes(case):
    """The bytes schemathesis sends for this case's JSON body: requests' `json=` is json.dumps
    with allow_nan=False (schemathesis/transport/serialization.py: bytes as they are, None as
    `null`). Bodies of other media types are left unsigned (401, which the document lists)."""
    if case.media_type not in (None, "application/json"):
        return None
    body = case.body
    if isinstance(body, bytes):
        return body
    if body is None:
        return b"null"
    if type(body).__name__ == "NotSet":
        return b""
    return json.dumps(body, allow_nan=False).encode()


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    path = case.operation.path
    if path not in ("/v1/daily_webhook", "/v1/whereby"):
        return
    try:
        body = body_bytes(case)
    except ValueError:
        return
    if body is None:
        return
    ts = str(int(time.time()))
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in (
        "x-webhook-signature", "x-webhook-timestamp", "x-daily-signature", "whereby-signature")}
    message = ts.encode() + b"." + body
    if path == "/v1/daily_webhook":
        tag = hmac.new(DAILY_SECRET, message, hashlib.sha256).digest()
        headers["X-Webhook-Signature"] = base64.b64encode(tag).decode()
        headers["X-Webhook-Timestamp"] = ts
    else:
        tag = hmac.new(WHEREBY_SECRET, message, hashlib.sha256).hexdigest()
        headers["Whereby-Signature"] = f"t={ts},v1={tag}"
    case.headers = headers
