"""How the CLI is put together: no import circle between its modules, one Context, a closed pipe
ends quietly (real subprocess pipes)."""
from __future__ import annotations

import ast
import subprocess

import pytest

from lambda_pipeline.adapters.local.ledger import SqliteLedger
from tests.helpers import REPO, SAGEBUILD

SIGPIPE_EXIT = 141


def _imports_of(path) -> set[str]:
    """The sagebuild modules a module imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = f"sagebuild.{node.module}" if node.module else "sagebuild"
                out |= {base} if node.module else {f"sagebuild.{a.name}" for a in node.names}
            elif node.module and node.module.startswith("sagebuild"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("sagebuild")}
    return {m for m in out if (REPO / (m.replace(".", "/") + ".py")).exists()}


def test_the_cli_modules_import_no_circle():
    graph = {f"sagebuild.{p.stem}": _imports_of(p) for p in (REPO / "sagebuild").glob("*.py") if p.stem != "__init__"}
    for module in graph:
        graph[module].discard(module)

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if reaches(m, m, {m}))
    assert circles == [], f"import circles through {circles}"
    assert not any("sagebuild.cli" in deps for m, deps in graph.items() if m != "sagebuild.cli"), graph


def _closed_pipe(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has gone: every write the command makes fails with EPIPE."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    return subprocess.CompletedProcess(argv, proc.wait(timeout=60), "", err)


@pytest.fixture
def project_with_builds(tmp_path):
    (tmp_path / "sagebuild.json").write_text('{"pipeline": "wine"}')
    (tmp_path / ".sagebuild").mkdir()
    ledger = SqliteLedger(str(tmp_path / ".sagebuild" / "ledger.db"))
    for n in range(30):
        ledger.create_build("wine", "cli", f"build number {n}")
    ledger.close()
    return tmp_path


def test_a_closed_pipe_ends_quietly(project_with_builds):
    done = _closed_pipe([SAGEBUILD, "--project", str(project_with_builds), "list"])
    assert (done.returncode, done.stderr) == (SIGPIPE_EXIT, ""), done
    done = _closed_pipe([SAGEBUILD, "--help"])  # argparse itself ignores a failed write of the help: 0
    assert done.returncode in (0, SIGPIPE_EXIT) and done.stderr == "", done


def test_head_takes_the_first_line_and_the_rest_ends_quietly(project_with_builds):
    for command in (f"{SAGEBUILD} --help | head -1",
                    f"{SAGEBUILD} --project {project_with_builds} list --limit 30 | head -1"):
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode in (0, SIGPIPE_EXIT) and done.stderr == "", (command, done)
        assert len(done.stdout.splitlines()) == 1
    assert done.stdout.startswith("#30 ") and done.stdout.rstrip().endswith("cli: build number 29"), done.stdout
