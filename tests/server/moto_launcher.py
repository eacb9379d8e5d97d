"""Run moto's S3 in server mode on 127.0.0.1 with an OS-assigned port; print the port, serve.

Started as its own process by the `moto_s3` fixture (and the S3 benchmarks), so the server has
its own interpreter: replicas in other processes reach it, and it never competes for the
test process's GIL. It stops when its stdin closes (the parent died or is done).
"""

from __future__ import annotations

import logging
import sys

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or exited
    server.stop()


if __name__ == "__main__":
    main()
