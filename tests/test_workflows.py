"""The GitHub Actions workflows and the composite action: actionlint, policy, and a local run.

actionlint (with shellcheck for the `run:` scripts) comes from the test extra as real wheels. The
release workflow's jobs are run here step by step with bash, the way a runner would: `uses:`
steps are what the fixture provides (a full clone, this interpreter), expressions are resolved
from a context of secrets and step outputs, against a temporary git remote, the real bundled
index and a local GitHub API stub.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from releasekit.server.tokens import ACTIONS, create_token
from tests.conftest import GitRepo
from tests.server.conftest import make_wheel, wait_for
from tests.test_build import tiny_project
from tests.test_forge import SLUG, TOKEN, GitHubStub, github
from tests.test_publish import PASSWORD, USER, Index, start_index

__all__ = ["github", "start_index"]  # fixtures, imported for pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
# A token that may promote: its own `promote` scope once branch `indexes` (index-scoped tokens)
# has landed; until then the stand-in in acl.py maps promoting onto `update`.
PROMOTE_SCOPE = ["promote"] if "promote" in ACTIONS else ["update"]
_EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
_CONDITION = re.compile(r"^([\w.-]+) (==|!=) '([^']*)'$")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is not installed: `make install` installs it from the test extra"
    return found


def actionlint(*files: Path, stdin: str | None = None, cwd: Path = ROOT) -> tuple[int, str]:
    command = [tool("actionlint"), "-oneline", "-no-color", "-shellcheck", tool("shellcheck")]
    command += ["-pyflakes", ""]
    command += [str(f) for f in files] if stdin is None else ["-stdin-filename", "action.yml", "-"]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=cwd)
    return done.returncode, done.stdout + done.stderr


def action_as_workflow(action: dict[str, Any]) -> str:
    """action.yml's composite steps as a reusable workflow with the same inputs.

    actionlint lints workflows, not action metadata; this way the steps' expressions are checked
    against the declared inputs and their scripts go through shellcheck.
    """
    inputs = {
        name: {"type": "string", "required": False, "default": spec.get("default", "")}
        for name, spec in action["inputs"].items()
    }
    workflow = {
        "name": "action",
        "on": {"workflow_call": {"inputs": inputs}},
        "permissions": {},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    return yaml.safe_dump(workflow, sort_keys=False)


# -- actionlint ----------------------------------------------------------------------------------


def test_workflows_pass_actionlint() -> None:
    status, output = actionlint(WORKFLOWS / "ci.yml", WORKFLOWS / "release.yml")
    assert (status, output) == (0, "")


def test_composite_action_passes_actionlint() -> None:
    status, output = actionlint(stdin=action_as_workflow(load(ROOT / "action.yml")))
    assert (status, output) == (0, "")


def test_actionlint_flags_broken_workflows_and_actions(tmp_path: Path) -> None:
    original = (WORKFLOWS / "release.yml").read_text(encoding="utf-8")
    target = tmp_path / "release.yml"
    target.write_text(
        original.replace("steps.release.outputs.version", "steps.relase.outputs.version", 1)
    )
    status, output = actionlint(target)
    assert status == 1 and 'property "relase" is not defined' in output

    target.write_text(original.replace("runs-on:", "run-on:", 1))
    status, output = actionlint(target)
    assert status == 1 and '"runs-on" section is missing in job' in output

    action = load(ROOT / "action.yml")
    action["runs"]["steps"][-1]["run"] += "\nrm -rf $RK_COMMAND/x\necho ${{ inputs.nope }}\n"
    status, output = actionlint(stdin=action_as_workflow(action))
    assert status == 1
    assert "SC2086" in output and 'property "nope" is not defined' in output


def test_the_local_action_is_checked_against_its_inputs(tmp_path: Path) -> None:
    """ci.yml runs `uses: ./`; actionlint reads action.yml and refuses an unknown input."""
    GitRepo(tmp_path)  # actionlint finds the project (and `./`) by its .git
    shutil.copy(ROOT / "action.yml", tmp_path / "action.yml")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    ci = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    broken = ci.replace(
        "command: release --dry-run", "command: release --dry-run\n          nope: 1"
    )
    assert broken != ci
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text(broken, encoding="utf-8")
    status, output = actionlint(tmp_path / ".github" / "workflows" / "ci.yml", cwd=tmp_path)
    assert status == 1 and 'input "nope" is not defined' in output


# -- policy --------------------------------------------------------------------------------------


def all_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_ci_matrix_permissions_and_concurrency() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    assert ci["permissions"] == {"contents": "read"}
    assert ci["concurrency"] == {"group": "ci-${{ github.ref }}", "cancel-in-progress": True}
    test = ci["jobs"]["test"]
    assert test["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    assert any("make test" in step.get("run", "") for step in test["steps"])
    assert all("permissions" not in job for job in ci["jobs"].values())


def test_release_triggers_permissions_and_concurrency() -> None:
    release = load(WORKFLOWS / "release.yml")
    assert release["on"]["push"] == {"branches": ["main", "develop"], "tags": ["v*"]}
    assert set(release["on"]) == {"push", "workflow_dispatch"}
    assert release["permissions"] == {}
    assert release["concurrency"]["cancel-in-progress"] is False
    assert "github.ref" in release["concurrency"]["group"]
    jobs = dict(release["jobs"])
    promote = jobs.pop("promote")
    for job in jobs.values():
        # A run started by hand (to promote) never releases.
        assert job["if"].startswith("github.event_name == 'push' && ")
        assert job["permissions"] == {"contents": "write"}
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["fetch-depth"] == 0
    assert promote["if"] == "github.event_name == 'workflow_dispatch'"
    assert promote["permissions"] == {"contents": "read"}
    assert promote["environment"] == "${{ inputs.to }}"


@pytest.mark.parametrize("name", ["ci.yml", "release.yml", "action.yml"])
def test_actions_are_pinned_to_a_major_and_scripts_take_no_expressions(name: str) -> None:
    path = ROOT / name if name == "action.yml" else WORKFLOWS / name
    data = load(path)
    steps = data["runs"]["steps"] if name == "action.yml" else all_steps(data)
    for step in steps:
        uses = step.get("uses")
        if uses is not None and uses != "./":
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", uses), uses
        # Expressions reach scripts through env only: pasted into a script they could inject.
        assert "${{" not in step.get("run", ""), step


# -- running the release jobs --------------------------------------------------------------------


def expand(text: str, context: Mapping[str, str]) -> str:
    """Replace `${{ name }}` by its value; an expression the context lacks fails the test."""

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"the test cannot evaluate ${{{{ {match.group(1)} }}}}"
        return context[match.group(1)]

    return _EXPRESSION.sub(value, str(text))


def condition(text: str, context: Mapping[str, str]) -> bool:
    match = _CONDITION.match(_EXPRESSION.sub(r"\1", text).strip())
    assert match, f"the test cannot evaluate if: {text}"
    name, operator, literal = match.groups()
    assert name in context, f"the test cannot evaluate {name}"
    return (context[name] == literal) == (operator == "==")


def run_steps(
    steps: list[dict[str, Any]],
    workdir: Path,
    context: dict[str, str],
    env: Mapping[str, str],
    provided: set[str],
) -> list[str]:
    """Run the `run:` steps with bash as a runner would; returns the names of steps not run.

    `provided` names the steps the test stands in for (installing releasekit: it is this venv).
    Step outputs land in `context` as `steps.ID.outputs.KEY`.
    """
    skipped = []
    for number, step in enumerate(steps):
        label = step.get("name") or step.get("uses") or f"step {number}"
        if "uses" in step or label in provided:
            skipped.append(label)
            continue
        if "if" in step and not condition(step["if"], context):
            skipped.append(label)
            continue
        output = workdir.parent / f"github-output-{number}"
        output.write_text("")
        step_env = {**env, "GITHUB_OUTPUT": str(output)}
        step_env.update({k: expand(v, context) for k, v in step.get("env", {}).items()})
        shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail"] if "shell" in step else []
        shell = shell or ["bash", "-e"]
        cwd = workdir / expand(step.get("working-directory", "."), context)
        done = subprocess.run(
            [*shell, "-c", step["run"]], cwd=cwd, env=step_env, capture_output=True, text=True
        )
        shown = done.stdout + done.stderr
        for secret in (PASSWORD, USER, TOKEN):
            assert secret not in shown, f"{label} printed a secret"
        assert done.returncode == 0, f"{label} failed:\n{shown}"
        for line in output.read_text().splitlines():
            key, _, value = line.partition("=")
            context[f"steps.{step.get('id')}.outputs.{key}"] = value
    return skipped


def checkout(remote: Path, ref: str, where: Path) -> Path:
    """What actions/checkout does with `ref` and fetch-depth 0: a full clone at that ref."""
    subprocess.run(["git", "clone", "--quiet", str(remote), str(where)], check=True)
    kind, _, name = ref.removeprefix("refs/").partition("/")
    switch = ["switch", "--quiet", name] if kind == "heads" else ["switch", "--detach", name]
    subprocess.run(["git", *switch], cwd=where, check=True, capture_output=True)
    return where


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A bare remote holding tiny-lib 0.1.0 (in-tree backend: builds offline) on main and develop."""
    source = GitRepo(tmp_path / "source")
    tiny_project(source.path, "0.1.0")
    source.write(".gitignore", "dist/\n__pycache__/\n")
    source.commit("chore: initial commit")
    source.commit("feat: greet the world")
    source.git("branch", "develop")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(source.path), str(remote)], check=True)
    return remote


def remote_tags(remote: Path) -> list[str]:
    out = subprocess.run(["git", "tag", "--list"], cwd=remote, capture_output=True, text=True)
    return out.stdout.split()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("job", "branch", "secrets", "tag", "prerelease"),
    [
        ("main", "main", "PRIVATE", "v0.1.0", False),
        ("develop", "develop", "STAGING", "v0.1.0rc1", True),
    ],
)
def test_release_job_runs_end_to_end(
    library: Path,
    tmp_path: Path,
    start_index: Callable[..., Index],
    github: GitHubStub,
    job: str,
    branch: str,
    secrets: str,
    tag: str,
    prerelease: bool,
) -> None:
    index = start_index()
    workflow = load(WORKFLOWS / "release.yml")
    context = {
        f"secrets.{secrets}_PYPI_URL": index.url,
        f"secrets.{secrets}_PYPI_USERNAME": USER,
        f"secrets.{secrets}_PYPI_PASSWORD": PASSWORD,
        "secrets.GITHUB_TOKEN": TOKEN,
        "github.ref": f"refs/heads/{branch}",
        "github.ref_name": branch,
    }
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_REF": f"refs/heads/{branch}",
        "GITHUB_REF_NAME": branch,
        "GITHUB_REPOSITORY": SLUG,
        "GITHUB_API_URL": github.url,  # the runner sets it; GitHub Enterprise's is /api/v3
    }
    steps = workflow["jobs"][job]["steps"]
    assert expand(workflow["jobs"][job]["if"], context) == (
        f"github.event_name == 'push' && github.ref == 'refs/heads/{branch}'"
    )

    workdir = checkout(library, f"refs/heads/{branch}", tmp_path / "run1" / "work")
    skipped = run_steps(steps, workdir, context, env, provided={"Install releasekit"})

    assert skipped == ["actions/checkout@v5", "actions/setup-python@v6", "Install releasekit"]
    assert context["steps.release.outputs.released"] == "true"
    assert context["steps.release.outputs.version"] == tag.removeprefix("v")
    assert sorted(index.stored()) == [
        f"tiny_lib-{tag[1:]}-py3-none-any.whl",
        f"tiny_lib-{tag[1:]}.tar.gz",
    ]
    assert remote_tags(library) == [tag]
    [release] = github.releases.values()
    assert (release["tag_name"], release["prerelease"]) == (tag, prerelease)
    assert "greet the world" in release["body"]

    # A re-run (say the GitHub release step had failed) resumes: no second version, no second
    # upload, the same GitHub release updated.
    context = {k: v for k, v in context.items() if not k.startswith("steps.")}
    workdir = checkout(library, f"refs/heads/{branch}", tmp_path / "run2" / "work")
    run_steps(steps, workdir, context, env, provided={"Install releasekit"})
    assert remote_tags(library) == [tag] and len(index.stored()) == 2
    assert [w.method for w in github.writes()] == ["POST", "PATCH"]

    # The tag job (a person pushed the tag, or a PAT's push triggered it) updates it once more.
    tag_context = {"secrets.GITHUB_TOKEN": TOKEN, "github.ref_name": tag}
    workdir = checkout(library, f"refs/tags/{tag}", tmp_path / "run3" / "work")
    run_steps(workflow["jobs"]["tag"]["steps"], workdir, tag_context, env, {"Install releasekit"})
    assert [w.method for w in github.writes()] == ["POST", "PATCH", "PATCH"]
    assert len(github.releases) == 1


@pytest.mark.e2e
def test_composite_action_steps_release_and_set_outputs(
    library: Path, tmp_path: Path, start_index: Callable[..., Index], github: GitHubStub
) -> None:
    index = start_index()
    action = load(ROOT / "action.yml")
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update(
        {"index-url": index.url, "username": USER, "password": PASSWORD, "github-token": TOKEN}
    )
    context = {f"inputs.{name}": value for name, value in inputs.items()}
    context["github.action_path"] = str(ROOT)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_REPOSITORY": SLUG,
        "GITHUB_API_URL": github.url,
    }
    workdir = checkout(library, "refs/heads/main", tmp_path / "work")

    skipped = run_steps(action["runs"]["steps"], workdir, context, env, {"Install releasekit"})

    assert skipped == ["actions/setup-python@v6", "Install releasekit"]
    assert context["steps.run.outputs.released"] == "true"
    assert context["steps.run.outputs.version"] == "0.1.0"
    assert remote_tags(library) == ["v0.1.0"] and len(index.stored()) == 2

    # The same action then makes the GitHub release (the consumer template's second step).
    context["inputs.command"] = "forge release 0.1.0"
    run_steps(action["runs"]["steps"][-1:], workdir, context, env, set())
    assert context["steps.run.outputs.released"] == "false"
    assert [w.method for w in github.writes()] == ["POST"]

    # And promotes (the consumer template's promote job): index-url becomes --url.
    made = subprocess.run(
        [BIN / "releasekit", "server", "index", "create", "prod", "-D", index.packages],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    context["inputs.command"] = "promote tiny-lib 0.1.0 --from root --to prod"
    run_steps(action["runs"]["steps"][-1:], workdir, context, env, set())
    prod = index.packages / ".indexes" / "prod"
    assert sorted(p.name for p in prod.iterdir() if p.is_file()) == sorted(index.stored())


@pytest.mark.e2e
def test_promote_job_runs_against_a_real_index(
    tmp_path: Path, start_index: Callable[..., Index]
) -> None:
    index = start_index()
    for name in ("staging", "prod"):
        made = subprocess.run(
            [BIN / "releasekit", "server", "index", "create", name, "-D", index.packages],
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stderr
    wheel = make_wheel(index.packages / ".indexes" / "staging", "releasekit", "9.9.9")
    tokens = index.packages / ".releasekit/tokens.json"
    token = create_token(tokens, owner=USER, actions=PROMOTE_SCOPE).value
    probe = {"project": "releasekit", "version": "0.0.1", "from": "staging", "to": "prod"}

    def token_known() -> bool:  # the server re-reads the tokens file within a second
        answer = httpx2.post(
            f"{index.url}_/promote", json=probe, headers={"authorization": f"Bearer {token}"}
        )
        return answer.status_code == 404

    wait_for(token_known)
    job = load(WORKFLOWS / "release.yml")["jobs"]["promote"]
    context = {
        "secrets.PRIVATE_PYPI_ROOT_URL": index.url,
        "secrets.PROMOTE_TOKEN": token,
        "inputs.version": "9.9.9",
        "inputs.from": "staging",
        "inputs.to": "prod",
    }
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    workdir = tmp_path / "work"
    workdir.mkdir()

    skipped = run_steps(job["steps"], workdir, context, env, provided={"Install releasekit"})

    assert skipped == ["actions/checkout@v5", "actions/setup-python@v6", "Install releasekit"]
    promoted = index.packages / ".indexes" / "prod" / wheel.name
    assert promoted.read_bytes() == wheel.read_bytes()
