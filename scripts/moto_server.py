"""Runs moto's server (same arguments as `moto_server`) with DynamoDB requests applied one at
a time.

Real DynamoDB applies each write atomically: a conditional put, an `ADD`/`SET x = x + 1`
update and a transaction either see every earlier write to the item or none. moto's threaded
server does not: it evaluates a condition or an update expression and writes the result
without a lock, and a cancelled TransactWriteItems restores a deep copy of the whole table,
discarding writes that other threads made meanwhile. Under concurrent requests that loses
counter updates and lets two conditional writers both win, so the store's concurrency tests
would fail for the emulator's sake. Serialising DynamoDB calls restores the guarantees the
code relies on; other services keep moto's own handling (S3 bodies still stream).

Usage: python scripts/moto_server.py -H 127.0.0.1 -p 5000
"""

import threading

import moto.server as server

_run_simple = server.run_simple
_dynamodb_lock = threading.Lock()


def _serialise_dynamodb(app):
    def handle(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return app(environ, start_response)
        with _dynamodb_lock:
            # DynamoDB answers are small JSON: build the whole body inside the lock.
            return [b"".join(app(environ, start_response))]

    return handle


def _run_simple_serialised(host, port, app, **kwargs):
    _run_simple(host, port, _serialise_dynamodb(app), **kwargs)


server.run_simple = _run_simple_serialised

if __name__ == "__main__":
    server.main()
