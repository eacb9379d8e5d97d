"""Load the bundled index (releasekit) against pypiserver and nginx serving the same corpus.

Each server runs on 127.0.0.1 with a free port. wrk measures req/s and p50/p99 latency on
`/simple/`, `/simple/<p>/` (HTML and PEP 691 JSON) and one wheel; the script also records
cold start (process start -> first 200 on `/simple/<p>/`), a restart, RSS after load and
`pip install chain-00` (30 packages) into a fresh venv. Every wait has a deadline, every child
a timeout, and every server is stopped by PID. Figures are indicative: wrk and the servers share
the same cores.

    python benchmarks/bench_server.py --projects 1000 --duration 5
"""

from __future__ import annotations

import argparse
import email.parser
import hashlib
import html
import json
import os
import re
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin

import httpx2
import server_corpus
from packaging.utils import parse_sdist_filename, parse_wheel_filename

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
SERVERS = ("releasekit", "releasekit-granian", "releasekit-nginx", "pypiserver", "nginx")
# releasekit on granian is measured on request (`--servers ...,releasekit-granian`, with
# `pip install granian` in the releasekit environment): the shipped server is uvicorn, see
# probe_asgi_hardening.py for why.
DEFAULT_SERVERS = ("releasekit", "releasekit-nginx", "pypiserver", "nginx")
DEPLOY_NGINX = HERE.parent / "deploy" / "nginx" / "releasekit.conf"
PEER_REQUIREMENTS = ("pypiserver[cache]", "gunicorn", "gevent", "waitress")


@dataclass(frozen=True)
class Load:
    """One wrk run: throughput, latency percentiles and failed requests."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Result:
    """Everything measured for one server; None means not measured or not supported."""

    name: str
    description: str = ""
    cold_start_s: float | None = None
    indexed_s: float | None = None
    restart_s: float | None = None
    loads: dict[str, Load | None] = field(default_factory=dict)
    rss_mb: float | None = None
    pip_s: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Launch:
    """How to start one server: argv, environment, working directory and a label."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    description: str


def run(
    argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """subprocess.run with a hard timeout and captured text output."""
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def free_port() -> int:
    """Ask the OS for a free port on 127.0.0.1 (bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_corpus(projects: int, versions: int) -> server_corpus.Corpus:
    """Generate the corpus once per (projects, versions); a manifest beside it marks it complete."""
    root = WORK / f"corpus-{projects}x{versions}"
    manifest = root.with_suffix(".json")
    if manifest.exists() and root.exists():
        data = json.loads(manifest.read_text())
        return server_corpus.Corpus(
            root=root,
            projects=tuple(data["projects"]),
            chain=tuple(data["chain"]),
            versions=tuple(data["versions"]),
            files=int(data["files"]),
        )
    shutil.rmtree(root, ignore_errors=True)
    corpus = server_corpus.generate(root, projects, versions)
    record = {k: v for k, v in asdict(corpus).items() if k != "root"}
    manifest.write_text(json.dumps(record))
    return corpus


def _requires_python(archive: Path) -> str | None:
    """Requires-Python read from a wheel's METADATA or an sdist's PKG-INFO."""
    raw = b""
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:
            names = wheel.namelist()
            meta = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            raw = wheel.read(meta[0]) if meta else b""
    else:
        with tarfile.open(archive) as sdist:
            for member in sdist:
                if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                    handle = sdist.extractfile(member)
                    raw = handle.read() if handle else b""
                    break
    return email.parser.BytesHeaderParser().parsebytes(raw).get("Requires-Python")


def _html_page(title: str, lines: list[str]) -> str:
    body = "\n".join(lines)
    return (
        '<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>{title}</title>\n  </head>\n  <body>\n    <h1>{title}</h1>\n{body}\n"
        "  </body>\n</html>\n"
    )


def write_static_index(packages: Path, out: Path) -> Path:
    """Render a static PEP 503 index of a flat packages directory into `out` (once)."""
    stamp = out / ".complete"
    if stamp.exists():
        return out
    fresh_dir(out)
    projects: dict[str, list[str]] = {}
    for archive in sorted(packages.iterdir()):
        if archive.name.endswith(".whl"):
            name = str(parse_wheel_filename(archive.name)[0])
        elif archive.name.endswith(".tar.gz"):
            name = str(parse_sdist_filename(archive.name)[0])
        else:
            continue
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        python = _requires_python(archive)
        attr = f' data-requires-python="{html.escape(python)}"' if python else ""
        href = html.escape(f"../../packages/{quote(archive.name)}#sha256={digest}")
        link = f'    <a href="{href}"{attr}>{html.escape(archive.name)}</a><br>'
        projects.setdefault(name, []).append(link)
    for name, links in projects.items():
        page = out / "simple" / name / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(_html_page(f"Links for {name}", links))
    root_links = [f'    <a href="{name}/">{name}</a><br>' for name in sorted(projects)]
    (out / "simple" / "index.html").write_text(_html_page("Simple index", root_links))
    stamp.touch()
    return out


def ensure_peers_venv() -> Path:
    """Create benchmarks/.work/peers-venv-server with pypiserver and its server backends."""
    venv = WORK / "peers-venv-server"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "pypi-server").exists():
        made = run([sys.executable, "-m", "venv", str(venv)], timeout=120)
        if made.returncode != 0:
            raise RuntimeError(f"could not create {venv}: {made.stderr.strip()}")
        pip = [str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS]
        installed = run(pip, timeout=600)
        if installed.returncode != 0:
            raise RuntimeError(f"pip install of pypiserver failed: {installed.stderr[-2000:]}")
    return venv


def peer_versions(venv: Path, names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `names` inside `venv`."""
    code = "import importlib.metadata as m, sys; print(*(m.version(n) for n in sys.argv[1:]))"
    out = run([str(venv / "bin" / "python"), "-c", code, *names], timeout=60)
    return dict(zip(names, out.stdout.split(), strict=False))


def clean_env() -> dict[str, str]:
    """The environment without pip's configuration, so pip sees only the index under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def fresh_dir(path: Path) -> Path:
    """Empty `path` (a directory under WORK) and return it."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of a flat directory, so the server under test starts from scratch."""
    fresh_dir(target)
    for entry in source.iterdir():
        os.link(entry, target / entry.name)


def releasekit_launch(corpus: server_corpus.Corpus, port: int, workers: int, python: str) -> Launch:
    """releasekit server run on a hard-linked copy of the corpus, its own cwd under WORK."""
    run_dir = WORK / "run-releasekit"
    packages = run_dir / "packages"
    if not packages.exists():
        link_tree(corpus.root, packages)
    argv = [python, "-m", "releasekit", "server", "run", str(packages)]
    argv += ["-p", str(port), "-i", "127.0.0.1", "-a", ".", "--workers", str(workers)]
    argv += ["--log-level", "warning"]
    http = run([python, "-c", "import httptools, uvloop"], timeout=60).returncode == 0
    label = f"releasekit on uvicorn{' + httptools/uvloop' if http else ' (h11, asyncio)'}"
    return Launch(argv, run_dir, dict(os.environ), f"{label}, {workers} worker(s)")


def releasekit_granian_launch(
    corpus: server_corpus.Corpus, port: int, workers: int, python: str
) -> Launch:
    """The same app (`create_app` via the worker factory) on granian instead of uvicorn."""
    run_dir = WORK / "run-releasekit-granian"
    packages = run_dir / "packages"
    if not packages.exists():
        link_tree(corpus.root, packages)
    argv = [python, "-m", "granian", "--interface", "asgi", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    argv += ["--log-level", "warning", "--no-ws", "releasekit.server.process:app_from_env"]
    env = dict(os.environ)
    env |= {
        "RELEASEKIT_SERVER_PACKAGES_DIR": str(packages),
        "RELEASEKIT_SERVER_AUTHENTICATE": ".",
        "RELEASEKIT_SERVER_LOG_LEVEL": "warning",
    }
    return Launch(argv, run_dir, env, f"releasekit on granian, {workers} worker(s)")


def releasekit_nginx_launch(
    corpus: server_corpus.Corpus, port: int, workers: int, python: str
) -> Launch:
    """The deployment profile: nginx reads from disk, releasekit behind it; one process group."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    run_dir = WORK / "run-releasekit-nginx"
    packages = run_dir / "packages"
    if not packages.exists():
        link_tree(corpus.root, packages)
    prefix = run_dir / "nginx"
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    inner = free_port()
    site = (
        DEPLOY_NGINX.read_text()
        .replace("/srv/pypi/packages", str(packages))
        .replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{inner};")
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
    )
    (prefix / "site.conf").write_text(site)
    template = string.Template((HERE / "nginx" / "front.conf.template").read_text())
    user = "user root;" if os.geteuid() == 0 else ""
    conf = template.substitute(user_directive=user, prefix=prefix, site=prefix / "site.conf")
    (prefix / "nginx.conf").write_text(conf)
    releasekit = [python, "-m", "releasekit", "server", "run", str(packages), "-p", str(inner)]
    releasekit += [
        "-i",
        "127.0.0.1",
        "-a",
        ".",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    script = f"{shlex.join(releasekit)} & exec {shlex.join(nginx_argv(nginx, prefix))}"
    label = f"deploy/nginx/releasekit.conf: nginx (2 workers) in front of releasekit ({workers} worker(s))"
    return Launch(["sh", "-c", script], run_dir, dict(os.environ), label)


def pypiserver_launch(
    corpus: server_corpus.Corpus, port: int, workers: int, backend: str
) -> Launch:
    """pypi-server run with the chosen WSGI server; gunicorn reads its options from the env."""
    venv = ensure_peers_venv()
    versions = peer_versions(venv, ("pypiserver", "gunicorn", "waitress", "watchdog"))
    env = dict(os.environ)
    argv = [str(venv / "bin" / "pypi-server"), "run", "-p", str(port), "-i", "127.0.0.1"]
    argv += ["-a", ".", "-P", ".", "--disable-fallback", "--backend", "cached-dir"]
    label = (
        f"pypiserver {versions.get('pypiserver')}, cached-dir (watchdog {versions.get('watchdog')})"
    )
    if backend == "waitress":
        # `--server` has no "waitress" choice; "auto" picks waitress first when it is installed.
        argv += ["--server", "auto"]
        label += f", waitress {versions.get('waitress')} (1 process)"
    else:
        worker_class = "gevent" if backend == "gunicorn-gevent" else "sync"
        argv += ["--server", "gunicorn"]
        env["GUNICORN_CMD_ARGS"] = f"--workers {workers} --worker-class {worker_class}"
        label += f", gunicorn {versions.get('gunicorn')} {workers} {worker_class} worker(s)"
    return Launch([*argv, str(corpus.root)], fresh_dir(WORK / "run-pypiserver"), env, label)


def nginx_launch(corpus: server_corpus.Corpus, port: int) -> Launch:
    """nginx in the foreground on the static index, prefix/pid/temp paths under WORK."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    static = write_static_index(corpus.root, WORK / f"static-{corpus.root.name}")
    prefix = fresh_dir(WORK / "run-nginx")
    (prefix / "tmp").mkdir()
    template = string.Template((HERE / "nginx" / "nginx.conf.template").read_text())
    # Workers of a root master drop to `nobody`, who may not read /work: keep them root.
    user = "user root;" if os.geteuid() == 0 else ""
    conf = template.substitute(
        user_directive=user, prefix=prefix, port=port, root=static, packages=corpus.root
    )
    (prefix / "nginx.conf").write_text(conf)
    version = run([nginx, "-v"], timeout=30).stderr.strip().removeprefix("nginx version: ")
    return Launch(
        nginx_argv(nginx, prefix), prefix, dict(os.environ), f"{version}, static files, 2 workers"
    )


def nginx_argv(nginx: str, prefix: Path) -> list[str]:
    """nginx in the foreground with its config, pid and logs under `prefix`."""
    conf, log = str(prefix / "nginx.conf"), str(prefix / "error.log")
    return [nginx, "-p", str(prefix), "-c", conf, "-e", log]


def process_tree(root: int) -> list[int]:
    """PIDs of `root` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def rss_mb(root: int) -> float:
    """VmRSS summed over the process tree (shared pages of forked workers count twice)."""
    total_kb = 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total_kb += int(match.group(1)) if match else 0
    return total_kb / 1024


@contextmanager
def started(launch: Launch, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; stop that group (by the child's PID) on exit."""
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        # Workers can outlive a master that died first; they share its process group id.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(
    proc: subprocess.Popen[bytes], url: str, started_at: float, log: Path, limit: float
) -> float:
    """Poll `url` until it answers 200; return seconds since `started_at`. Bounded by `limit`."""
    deadline = started_at + limit
    with httpx2.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
                raise RuntimeError(
                    f"server exited with {proc.returncode} before ready: {tail[0]} (log: {log})"
                )
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - started_at
            except httpx2.TransportError:
                pass
            time.sleep(0.005)
    raise RuntimeError(f"{url} not ready within {limit:.0f} s (log: {log})")


def wrk(url: str, accept: str, duration: float, connections: int, threads: int) -> Load:
    """One bounded wrk run, parsed into a Load."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    # wrk's default 2 s timeout drops slow answers from the count; wait long enough to see them.
    argv.append(f"--timeout={max(10.0, 2 * duration):g}s")
    out = run([*argv, "-H", f"Accept: {accept}", url], timeout=duration + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec for {url}:\n{out}")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return Load(float(rps.group(1)), _percentile(out, "50"), _percentile(out, "99"), errors)


def _percentile(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    if match is None:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[match.group(2)]
    return float(match.group(1)) * scale


def endpoints(base: str, project: str) -> dict[str, tuple[str, str] | None]:
    """The URLs to load with their Accept header; None where the server lacks the feature."""
    page = f"{base}/simple/{project}/"
    listing = httpx2.get(page, headers={"Accept": "text/html"}, timeout=10.0)
    listing.raise_for_status()
    wheels = [h for h in re.findall(r'href="([^"]+)"', listing.text) if ".whl" in h]
    if not wheels:
        raise RuntimeError(f"{page} lists no wheel")
    file_url = urljoin(page, wheels[0].replace("&amp;", "&")).split("#", 1)[0]
    as_json = httpx2.get(page, headers={"Accept": JSON_TYPE}, timeout=10.0)
    json_ok = as_json.status_code == 200 and as_json.headers.get("content-type", "").startswith(
        JSON_TYPE
    )
    return {
        "/simple/": (f"{base}/simple/", "text/html"),
        "/simple/<p>/ HTML": (page, "text/html"),
        "/simple/<p>/ JSON": (page, JSON_TYPE) if json_ok else None,
        "file": (file_url, "*/*"),
    }


def pip_install(base: str, name: str, venv: Path) -> float:
    """Seconds for `pip install --no-cache-dir <name>` from the index into a fresh venv."""
    fresh_dir(venv.parent)
    made = run([sys.executable, "-m", "venv", str(venv)], timeout=180)
    if made.returncode != 0:
        raise RuntimeError(f"venv creation failed: {made.stderr.strip()}")
    argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", "-q"]
    begin = time.monotonic()
    done = run([*argv, "--index-url", f"{base}/simple/", name], timeout=600, env=clean_env())
    elapsed = time.monotonic() - begin
    if done.returncode != 0:
        raise RuntimeError(f"pip install {name} failed: {done.stderr[-1500:]}")
    return elapsed


def measure(
    result: Result,
    launch_for: Callable[[int], Launch],
    project: str,
    chain_head: str,
    args: argparse.Namespace,
) -> None:
    """Fill `result` with cold start, loads, RSS, pip install and a restart of one server."""
    port = free_port()
    launch = launch_for(port)
    result.description = launch.description
    log, base = launch.cwd / "server.log", f"http://127.0.0.1:{port}"
    begin = time.monotonic()
    with started(launch, log) as proc:
        result.cold_start_s = wait_ready(
            proc, f"{base}/simple/{project}/", begin, log, args.ready_deadline
        )
        result.indexed_s = settle(base, begin)
        for label, target in endpoints(base, project).items():
            if target is None:
                result.loads[label] = None
                continue
            if args.warmup > 0:
                wrk(*target, args.warmup, args.connections, args.threads)
            result.loads[label] = wrk(*target, args.duration, args.connections, args.threads)
        result.rss_mb = rss_mb(proc.pid)
        if not args.no_pip:
            result.pip_s = pip_install(base, chain_head, WORK / f"pip-{result.name}" / "venv")
    port = free_port()
    launch = launch_for(port)
    begin = time.monotonic()
    with started(launch, log) as proc:
        url = f"http://127.0.0.1:{port}/simple/{project}/"
        result.restart_s = wait_ready(
            proc, url, begin, launch.cwd / "server.log", args.ready_deadline
        )


def settle(base: str, started_at: float, limit: float = 300.0) -> float | None:
    """Wait until a releasekit index has indexed every file (`/ready` says so several times in a
    row: each worker answers for itself), so the loads measure the steady state. Seconds since
    start, or None for a server without that report."""
    deadline, in_a_row = time.monotonic() + limit, 0
    with httpx2.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            response = client.get(f"{base}/ready")
            indexing = (
                response.json().get("indexing")
                if response.status_code == 200
                and response.headers.get("content-type", "").startswith("application/json")
                else None
            )
            if indexing is None:
                return None
            in_a_row = in_a_row + 1 if indexing["done"] >= indexing["total"] else 0
            if in_a_row >= 6:
                return time.monotonic() - started_at
            time.sleep(0.5)
    raise RuntimeError(f"background indexing did not finish within {limit:.0f} s")


def prerequisite_missing(name: str, python: str) -> str:
    """Why server `name` cannot be started here, or "" when it can."""
    nginx_missing = shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists()
    if name in ("nginx", "releasekit-nginx") and nginx_missing:
        return "nginx is not installed; run `apt-get install -y nginx`"
    if not name.startswith("releasekit"):
        return ""
    if name == "releasekit-granian":
        probe = run([python, "-c", "import granian"], timeout=60)
        if probe.returncode != 0:
            return f"granian is not installed for {python}; pip install granian"
    probe = run([python, "-m", "releasekit", "server", "run", "--help"], timeout=60)
    if probe.returncode == 0:
        return ""
    lines = (probe.stderr or probe.stdout).strip().splitlines() or ["no output"]
    return f"`releasekit server run` is not available: {lines[-1]}"


LOAD_ROWS = ("/simple/", "/simple/<p>/ HTML", "/simple/<p>/ JSON", "file")


def _cell_load(result: Result, label: str) -> str:
    if label not in result.loads:
        return "failed" if result.error else "not run"
    load = result.loads[label]
    if load is None:
        return "n/a"
    if load.rps == 0:
        return "0 (no answer within the run)"
    cell = f"{load.rps:,.0f} ({load.p50_ms:.2f} / {load.p99_ms:.2f})"
    return f"{cell} ! {load.errors} errors" if load.errors else cell


def _cell(value: float | None, unit: str, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def render_table(results: list[Result], files: int) -> str:
    """The markdown table, one column per server, with the server descriptions below."""
    lines = ["| | " + " | ".join(r.name for r in results) + " |"]
    lines.append("|---" * (len(results) + 1) + "|")
    for label in LOAD_ROWS:
        path, _, kind = label.partition(" ")
        title = "one wheel file" if label == "file" else f"`{path}` {kind}".strip()
        lines.append(
            f"| {title} req/s (p50 / p99 ms) | "
            + " | ".join(_cell_load(r, label) for r in results)
            + " |"
        )
    rows: list[tuple[str, Callable[[Result], str]]] = [
        (
            f"cold start to first `/simple/<p>/` ({files} files)",
            lambda r: _cell(r.cold_start_s, "s"),
        ),
        (
            "background indexing done (loads start after it)",
            lambda r: _cell(r.indexed_s, "s", 0),
        ),
        ("restart (same directories)", lambda r: _cell(r.restart_s, "s")),
        ("RSS after load (process tree)", lambda r: _cell(r.rss_mb, "MB", 0)),
        ("`pip install chain-00` (30 packages)", lambda r: _cell(r.pip_s, "s", 1)),
    ]
    for title, cell in rows:
        lines.append(f"| {title} | " + " | ".join(cell(r) for r in results) + " |")
    lines.append("")
    lines += [
        f"- {r.name}: {r.description or 'not started'}" + (f"; {r.error}" if r.error else "")
        for r in results
    ]
    return "\n".join(lines)


def _html_rps(results: dict[str, Result], name: str) -> float | None:
    result = results.get(name)
    load = result.loads.get("/simple/<p>/ HTML") if result and not result.error else None
    return load.rps if load else None


def render_targets(results: list[Result], files: int) -> str:
    """The targets line with the ratios actually measured."""
    by_name = {r.name: r for r in results}
    parts = []
    for ours_name in ("releasekit", "releasekit-nginx"):
        ours = _html_rps(by_name, ours_name)
        for peer, goal in (("nginx", 0.5), ("pypiserver", 10.0)):
            theirs = _html_rps(by_name, peer)
            if ours is None or theirs is None:
                continue
            ratio = ours / theirs
            verdict = "met" if ratio >= goal else "missed"
            parts.append(
                f"{ours_name} `/simple/<p>/` >= {goal:g}x {peer}: {ratio:.2f}x ({verdict})"
            )
    cold = by_name["releasekit"].cold_start_s if "releasekit" in by_name else None
    if cold is None:
        parts.append("cold start < 1 s at 20k files: not measured")
    else:
        scale = "" if files == 20_000 else f", measured at {files} files, not 20k"
        parts.append(
            f"cold start < 1 s at 20k files: {cold:.2f} s ({'met' if cold < 1 else 'missed'}{scale})"
        )
    return "Targets: " + "; ".join(parts) + "."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--projects", type=int, default=1000, help="projects in the corpus (x versions x 2 files)"
    )
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of wrk before each measured run"
    )
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes for releasekit and gunicorn"
    )
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help="comma-separated subset of " + ",".join(SERVERS),
    )
    parser.add_argument(
        "--pypiserver-backend",
        choices=("gunicorn-sync", "gunicorn-gevent", "waitress"),
        # Measured at 20k files: sync workers answer /simple/<p>/ a little faster than gevent
        # (the Docker image's choice) with a far shorter p99; waitress answers almost nothing.
        default="gunicorn-sync",
        help="pypiserver's WSGI server (default: the fastest measured, gunicorn-sync)",
    )
    parser.add_argument(
        "--ready-deadline", type=float, default=300.0, help="seconds a server may take to start"
    )
    parser.add_argument(
        "--releasekit-python",
        default=sys.executable,
        help="interpreter whose environment has releasekit[server] (default: this one)",
    )
    parser.add_argument("--no-pip", action="store_true", help="skip the pip install timing")
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON instead of markdown"
    )
    args = parser.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    # Absolute but not resolved: a venv's python is a symlink that must stay inside the venv.
    args.releasekit_python = str(Path.cwd() / args.releasekit_python)
    unknown = sorted(set(args.servers) - set(SERVERS))
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed; run `apt-get install -y wrk` (and nginx) first")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; exit 1 when a server failed."""
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    corpus = ensure_corpus(args.projects, args.versions)
    others = [p for p in corpus.projects if p not in corpus.chain] or list(corpus.projects)
    project = others[len(others) // 2]
    launchers: dict[str, Callable[[int], Launch]] = {
        "releasekit": lambda port: releasekit_launch(
            corpus, port, args.workers, args.releasekit_python
        ),
        "releasekit-granian": lambda port: releasekit_granian_launch(
            corpus, port, args.workers, args.releasekit_python
        ),
        "pypiserver": lambda port: pypiserver_launch(
            corpus, port, args.workers, args.pypiserver_backend
        ),
        "nginx": lambda port: nginx_launch(corpus, port),
        "releasekit-nginx": lambda port: releasekit_nginx_launch(
            corpus, port, args.workers, args.releasekit_python
        ),
    }
    results: list[Result] = []
    for name in args.servers:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        result = Result(name)
        results.append(result)
        try:
            missing = prerequisite_missing(name, args.releasekit_python)
            if missing:
                raise RuntimeError(missing)
            if name.startswith("releasekit"):
                shutil.rmtree(WORK / f"run-{name}", ignore_errors=True)  # a truly cold start
            measure(result, launchers[name], project, corpus.chain[0], args)
        except (RuntimeError, OSError, subprocess.SubprocessError, httpx2.HTTPError) as exc:
            lines = str(exc).strip().splitlines() or [repr(exc)]
            result.error = lines[0]
            print(f"{name} failed: {exc}", file=sys.stderr)
    setup = (
        f"{corpus.files} files ({len(corpus.projects)} projects x {len(corpus.versions)} versions), "
        f"p = {project}; wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s after a "
        f"{args.warmup:g} s warm-up; {os.cpu_count()} CPUs shared by wrk and the server; indicative figures"
    )
    if args.json:
        print(json.dumps({"setup": setup, "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(
            f"{setup}\n\n{render_table(results, corpus.files)}\n\n{render_targets(results, corpus.files)}"
        )
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
