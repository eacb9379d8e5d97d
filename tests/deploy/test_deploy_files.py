"""deploy/: every file validated by the tool its platform uses (no container engine runs here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, NGINX, basic, build_dists, get, twine_upload
from tests.test_publish import Index

BIN = Path(sys.executable).parent
PROMTOOL = shutil.which("promtool")
KUBECTL = shutil.which("kubectl")
OVERLAYS = sorted(p.name for p in (DEPLOY / "kubernetes" / "overlays").iterdir())
DASHBOARD = DEPLOY / "compose" / "grafana" / "dashboards" / "releasekit.json"
_PROMQL_NAME = re.compile(r"\b((?:releasekit|process)_[a-z_]+|up)\b(?=\s*[{\[)]|\s*$|\s*[<>=])")


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed: run `make install`")
    return str(path)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), str(DEPLOY / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_the_compose_specification() -> None:
    compose = DEPLOY / "compose" / "compose.yaml"
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose))
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(compose.read_text())["services"]
    assert set(services) == {"index", "nginx", "prometheus", "grafana"}
    index = services["index"]
    assert index["ulimits"]["nofile"]["soft"] >= 65536 and index["read_only"] is True
    assert "8080" not in str(index.get("ports", ""))  # only nginx is published
    env = index["environment"]
    assert env["RELEASEKIT_SERVER_ACCEL_REDIRECT"] == "/_releasekit_files/"
    assert "update" in env["RELEASEKIT_SERVER_AUTHENTICATE"]
    # Every file the stack mounts from this directory exists.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (compose.parent / source).exists(), source


def test_the_compose_s3_variant(tmp_path: Path) -> None:
    """The override file alone and merged onto the stack: a bucket, no X-Accel-Redirect."""
    variant = DEPLOY / "compose" / "compose.s3.yaml"
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(variant))
    assert result.returncode == 0, result.stdout + result.stderr
    services = yaml.safe_load(variant.read_text())["services"]
    env = services["index"]["environment"]
    assert env["RELEASEKIT_SERVER_STORAGE"].startswith("s3://")
    assert env["RELEASEKIT_SERVER_ACCEL_REDIRECT"] == ""
    assert "MINIO_ROOT_PASSWORD:?" in env["AWS_SECRET_ACCESS_KEY"]  # no default secret
    assert services["minio"]["user"].startswith("${RELEASEKIT_UID")  # not root


def test_compose_nginx_is_the_deploy_profile_with_tls() -> None:
    base = (DEPLOY / "nginx" / "releasekit.conf").read_text()
    tls = (DEPLOY / "compose" / "nginx" / "releasekit-tls.conf").read_text()
    expected = base[base.index("# PEP 691 negotiation") :].replace(
        "server 127.0.0.1:8080;", "server index:8080;"
    )
    inline = (
        "proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Real-IP $remote_addr;\n"
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;"
    )
    expected = expected.replace("include /etc/nginx/proxy_params;", inline)
    actual = tls[tls.index("# PEP 691 negotiation") :]
    # The same file apart from the TLS server block's head.
    strip = re.compile(r"server \{\n    listen 80;\n.*?client_max_body_size", re.DOTALL)
    assert strip.sub("", actual) == strip.sub("", expected)
    assert "listen 443 ssl http2;" in tls and "return 301 https://$host$request_uri;" in tls


def test_compose_nginx_config_is_accepted_by_nginx(tmp_path: Path) -> None:
    if NGINX is None or shutil.which("openssl") is None:
        pytest.skip("nginx or openssl is not installed: run `make install`")
    tls = tmp_path / "tls"
    tls.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pypi.internal",
            "-keyout",
            str(tls / "key.pem"),
            "-out",
            str(tls / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "compose" / "nginx" / "releasekit-tls.conf").read_text()
    site = site.replace("/etc/nginx/tls", str(tls)).replace(
        "server index:8080;", "server 127.0.0.1:9;"
    )
    site = site.replace("listen 443 ssl http2;", "listen 127.0.0.1:1443 ssl;").replace(
        "listen 80;", "listen 127.0.0.1:1080;"
    )
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ access_log off; include {tmp_path}/site.conf; }}\n"
    )
    result = run(NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"))
    assert result.returncode == 0 and "syntax is ok" in result.stderr, result.stderr


def prometheus_files(tmp_path: Path, target: str = "127.0.0.1:9") -> Path:
    """The shipped prometheus.yml with paths and target pointed at `tmp_path`."""
    source = DEPLOY / "compose" / "prometheus"
    (tmp_path / "alerts.yml").write_text((source / "alerts.yml").read_text())
    (tmp_path / "metrics-token").write_text("t" * 32 + "\n")
    config = (
        (source / "prometheus.yml")
        .read_text()
        .replace("/etc/prometheus/", f"{tmp_path}/")
        .replace('["index:8080"]', f'["{target}"]')
    )
    (tmp_path / "prometheus.yml").write_text(config)
    return tmp_path / "prometheus.yml"


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    if PROMTOOL is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed: run `make install`")
    config = prometheus_files(tmp_path)
    checked = run(PROMTOOL, "check", "config", str(config))
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    rules = run(PROMTOOL, "check", "rules", str(tmp_path / "alerts.yml"))
    assert rules.returncode == 0 and "SUCCESS: 4 rules found" in rules.stdout, rules.stdout
    names = {
        r["alert"]
        for g in yaml.safe_load((tmp_path / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    assert {"ReleasekitIndexDown", "ReleasekitHigh5xxRate", "ReleasekitDiskNearlyFull"} <= names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (functions and label names are not followed by {/[)."""
    return {m for m in _PROMQL_NAME.findall(expr) if m != "le"}


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provisioning = DEPLOY / "compose" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (datasource,) = source["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
    provider = yaml.safe_load((provisioning / "dashboards" / "releasekit.yml").read_text())
    compose = (DEPLOY / "compose" / "compose.yaml").read_text()
    assert f"./grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in compose
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "requests",
        "latency",
        "downloads per project and version",
        "uploads",
        "errors",
        "storage",
        "backlog",
    ):
        assert topic in titles, topic


@pytest.mark.e2e
def test_dashboard_names_only_metrics_the_index_exports(
    start_index: Callable[..., Index], tmp_path: Path
) -> None:
    index = start_index()
    twine_upload(index.url, build_dists(tmp_path, "1.0.0"))
    wheel = next(p.name for p in index.packages.iterdir() if p.name.endswith(".whl"))
    assert get(index.url + "packages/" + wheel)[0] == 200
    body = get(index.url + "metrics", headers={"Authorization": basic()})[2].decode()
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in body.splitlines()
        if line and not line.startswith("#")
    }
    exported.add("up")  # Prometheus' own
    used = set().union(*map(metric_names, dashboard_exprs()))
    assert (
        "releasekit_downloads_total" in used
        and "releasekit_http_request_duration_seconds_bucket" in used
    )
    assert used <= exported, sorted(used - exported)
    rules = yaml.safe_load((DEPLOY / "compose" / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert metric_names(rule["expr"]) <= exported, rule["alert"]


def rendered(overlay: str, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    if KUBECTL is None:
        pytest.skip("kubectl (for `kubectl kustomize`) is not installed on this machine")
    result = run(KUBECTL, "kustomize", str(DEPLOY / "kubernetes" / "overlays" / overlay))
    assert result.returncode == 0, result.stderr
    out = tmp_path / f"{overlay}.yaml"
    out.write_text(result.stdout)
    return out, [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_overlay_renders_and_validates(overlay: str, tmp_path: Path) -> None:
    out, documents = rendered(overlay, tmp_path)
    validate = run(tool("kubernetes-validate"), "--strict", "--quiet", str(out))
    assert validate.returncode == 0, validate.stdout + validate.stderr
    kinds = {d["kind"]: d for d in documents}
    on_s3 = overlay == "s3"  # N replicas on a bucket: no PVC (tested further below)
    assert set(kinds) | ({"PersistentVolumeClaim"} if on_s3 else set()) == {
        "Namespace",
        "PersistentVolumeClaim",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceMonitor",
    }
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert kinds["Deployment"]["spec"]["replicas"] == (3 if on_s3 else 1)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == [
        "ALL"
    ]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert (
        container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"]
        >= 300
    )
    assert container["resources"]["requests"] and container["resources"]["limits"]
    if on_s3:
        assert "PersistentVolumeClaim" not in kinds and "emptyDir" in pod["volumes"][0]
        assert {"secretRef": {"name": "releasekit-s3"}} in container["envFrom"]
        assert kinds["ConfigMap"]["data"]["RELEASEKIT_SERVER_STORAGE"].startswith("s3://")
        assert pod["affinity"]["podAntiAffinity"] and kinds["PodDisruptionBudget"]
        secrets = {d["metadata"]["name"] for d in documents if d["kind"] == "Secret"}
        assert "releasekit-s3" in secrets
    else:
        claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
        assert claim == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert kinds["Ingress"]["spec"]["tls"][0]["secretName"]
    # ServiceMonitor is a CRD without a schema here: check it points at the Service's port.
    monitor = kinds["ServiceMonitor"]["spec"]
    service = kinds["Service"]
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["authorization"]["credentials"]["name"] in {
        d["metadata"]["name"] for d in documents if d["kind"] == "Secret"
    }
    settings = kinds["ConfigMap"]["data"]
    assert all(key.startswith("RELEASEKIT_SERVER_") for key in settings)
    assert "update" in settings["RELEASEKIT_SERVER_AUTHENTICATE"]
    image = container["image"]
    if overlay == "airgapped":
        assert image.startswith("registry.internal:5000/"), image
    else:
        assert "/" in image and ":" in image, image
