"""Pick the S3 client by measurement: obstore vs boto3 against moto in server mode.

Prints import time (fresh interpreter), client construction, and the median / p95 latency of
small PUT, GET, range GET and conditional PUT (`If-None-Match: *`, a won and a lost create).
Bounded: a fixed number of rounds per operation. Run: `.venv/bin/python benchmarks/bench_s3_client.py`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

ROUNDS = 200
SECRET = "x"  # noqa: S105 - moto accepts any credentials
BODY = os.urandom(4096)
IMPORTS = {
    "obstore": "import obstore, obstore.store",
    "boto3": "import boto3",
}


def _import_ms(statement: str) -> float:
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import time; t=time.perf_counter(); {statement}; "
                "print((time.perf_counter()-t)*1000)",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(float(out.stdout))
    return statistics.median(runs)


def _timed(action: Callable[[int], object]) -> tuple[float, float]:
    times = []
    for n in range(ROUNDS):
        start = time.perf_counter()
        action(n)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95)]


def _obstore(endpoint: str) -> tuple[float, dict[str, tuple[float, float]]]:
    import obstore
    from obstore.exceptions import AlreadyExistsError
    from obstore.store import S3Store

    start = time.perf_counter()
    store = S3Store(
        "bench-obstore",
        endpoint=endpoint,
        region="us-east-1",
        access_key_id="x",
        secret_access_key=SECRET,
        client_options={"allow_http": True},
        virtual_hosted_style_request=False,
    )
    built = (time.perf_counter() - start) * 1000

    def lost(n: int) -> None:
        try:
            obstore.put(store, "put/0", BODY, mode="create")
        except AlreadyExistsError:
            return
        raise AssertionError("a second create won")

    return built, {
        "PUT 4 KiB": _timed(lambda n: obstore.put(store, f"put/{n}", BODY)),
        "GET 4 KiB": _timed(lambda n: obstore.get(store, f"put/{n}").bytes()),
        "range GET 100 B": _timed(
            lambda n: obstore.get_range(store, f"put/{n}", start=10, length=100)
        ),
        "create (won)": _timed(lambda n: obstore.put(store, f"new/{n}", BODY, mode="create")),
        "create (lost)": _timed(lost),
    }


def _boto3(endpoint: str) -> tuple[float, dict[str, tuple[float, float]]]:
    import boto3  # type: ignore[import-untyped]
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    start = time.perf_counter()
    client: Any = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key=SECRET,
    )
    built = (time.perf_counter() - start) * 1000
    client.create_bucket(Bucket="bench-boto3")
    b = "bench-boto3"

    def lost(n: int) -> None:
        try:
            client.put_object(Bucket=b, Key="put/0", Body=BODY, IfNoneMatch="*")
        except ClientError:
            return
        raise AssertionError("a second create won")

    return built, {
        "PUT 4 KiB": _timed(lambda n: client.put_object(Bucket=b, Key=f"put/{n}", Body=BODY)),
        "GET 4 KiB": _timed(lambda n: client.get_object(Bucket=b, Key=f"put/{n}")["Body"].read()),
        "range GET 100 B": _timed(
            lambda n: client.get_object(Bucket=b, Key=f"put/{n}", Range="bytes=10-109")[
                "Body"
            ].read()
        ),
        "create (won)": _timed(
            lambda n: client.put_object(Bucket=b, Key=f"new/{n}", Body=BODY, IfNoneMatch="*")
        ),
        "create (lost)": _timed(lost),
    }


def main() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.server.moto_launcher"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key=SECRET,
        ).create_bucket(Bucket="bench-obstore")
        results = {"obstore": _obstore(endpoint), "boto3": _boto3(endpoint)}
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(30)
    print(
        f"{'client':<10}{'import ms':>10}{'client ms':>10}  "
        + "  ".join(f"{op:>22}" for op in results["obstore"][1])
    )
    for name, (built, ops) in results.items():
        cells = "  ".join(f"{med:>9.2f} / {p95:>6.2f} p95" for med, p95 in ops.values())
        print(f"{name:<10}{_import_ms(IMPORTS[name]):>10.1f}{built:>10.1f}  {cells}")
    print(f"({ROUNDS} rounds each, medians in ms; moto in server mode on 127.0.0.1)")


if __name__ == "__main__":
    main()
