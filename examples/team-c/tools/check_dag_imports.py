#!/usr/bin/env python3
"""The team's DAG files load on the central site, which has only Airflow, edge3 and central_python_deps.

The central site's DAG processor imports every DAG file in its own environment. A
DAG file that imports a team package (python_deps, requirements.txt) at module level
is an import error there: the DAG never appears and nothing runs on the worker.

This check imports each DAG file under dags/ the way the DAG processor does, with the
DAG folder on sys.path, in a venv that holds exactly what the central site holds:
apache-airflow and apache-airflow-providers-edge3 at the central site's pins plus its
central_python_deps (its site profile, recorded in .copier-answers.yml). It prints one line per file that fails:

    dags/team_c/report.py:3: module 'pandas' is not installed on the central site; ...

The venv is built once (needs PyPI) into $EDGE_TEMPLATE_CACHE/dag-check/KEY (default
~/.cache/edge-template), keyed by the pins and this Python's version; later runs take a
few seconds. It is built with uv when uv is on PATH (the image's own installer, about
four times faster; uv reads UV_INDEX_URL, not pip.conf), else with pip;
EDGE_TEMPLATE_INSTALLER=pip forces pip. The build goes into a temporary folder that is
moved into place when whole, under a lock: runs started at once wait for one build. It
needs python3 3.10 or newer (3.11 for edge3 5.x) and its venv module. Stdlib only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from pathlib import Path

HOW_TO_FIX = 'import it inside the task function (see README "DAG files both sides can load")'


# --------------------------------------------------------------------------- the central environment


def central_requirements(site: dict[str, object]) -> list[str]:
    """apache-airflow and edge3 at the central site's pins, then its central_python_deps."""
    extra = site.get("central_python_deps") or []
    return [
        f"apache-airflow=={site.get('airflow_version')}",
        f"apache-airflow-providers-edge3=={site.get('edge_provider_version')}",
        *(extra if isinstance(extra, list) else [extra]),
    ]


def cache_root() -> Path:
    if os.environ.get("EDGE_TEMPLATE_CACHE"):
        return Path(os.environ["EDGE_TEMPLATE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edge-template"


def central_venv(requirements: list[str]) -> Path:
    """The cached venv holding `requirements`; built on first use."""
    key_source = json.dumps([list(sys.version_info[:2]), requirements])
    path = cache_root() / "dag-check" / hashlib.sha256(key_source.encode()).hexdigest()[:16]
    uv = None if os.environ.get("EDGE_TEMPLATE_INSTALLER") == "pip" else shutil.which("uv")

    def build(target: Path) -> None:
        print(
            f"edge-template: building the central site's environment once ({', '.join(requirements)}) "
            f"with {'uv' if uv else 'pip'} in {path}; this takes {'a few seconds' if uv else 'about a minute'}",
            file=sys.stderr,
        )
        if uv:
            # The platform's certificates, as pip's (a company proxy's CA): uv 0.9+ and older names.
            env = {"UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1", **os.environ}
            python = str(target / "bin" / "python")
            failed = run([uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(target)], env) or run(
                [uv, "pip", "install", "--quiet", "--python", python, *requirements], env
            )
            if not failed:
                return
            print(f"edge-template: uv failed, building with pip instead:\n{failed}", file=sys.stderr)
            shutil.rmtree(target, ignore_errors=True)
        # pip's scripts name the temporary folder; the check runs only bin/python, which moves fine.
        venv.EnvBuilder(with_pip=True).create(target)
        failed = run([str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q", "install",
                      *requirements], dict(os.environ))
        if failed:
            raise SystemExit(f"edge-template: pip install {' '.join(requirements)} failed:\n{failed}")

    return built_once(path, build, key_source)


def run(argv: list[str], env: dict[str, str]) -> str:
    """Run an installer; its error output if it failed, else ""."""
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - our argv
    return (result.stderr[-3000:] or f"exit code {result.returncode}") if result.returncode != 0 else ""


def built_once(path: Path, build: Callable[[Path], None], stamp: str) -> Path:
    """`path`, made by build(folder) on first use and safe when several runs start at once.

    Under a lock file beside it (released when the build ends or its process dies), build()
    fills a temporary folder, which is then renamed to `path`; the marker `.complete` is
    written last. A run that finds the marker uses `path`; one that finds the lock taken
    waits for that build and uses it. Also used by the template's own tests."""
    if (path / ".complete").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f"{path.name}.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"edge-template: waiting for another run that is building {path}", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / ".complete").exists():
            return path
        shutil.rmtree(path, ignore_errors=True)  # what a run that died before its marker left
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        try:
            build(scratch / "build")
            try:
                os.rename(scratch / "build", path)
            except OSError:
                if not (path / ".complete").exists():
                    raise
                return path  # a run that takes no lock (an older release of this check) finished first
            (path / ".complete").write_text(stamp + "\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path


# --------------------------------------------------------------------------- the probe (runs in that venv)


def probe(dags: Path, root: Path) -> list[str]:
    """Import every DAG file under `dags` as the DAG processor does; one line per failure."""
    import importlib.util
    import traceback

    sys.path.insert(0, str(dags))
    found = []
    for number, path in enumerate(dag_files(dags)):
        spec = importlib.util.spec_from_file_location(f"edge_template_dag_check_{number}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except (Exception, SystemExit) as error:  # the DAG processor catches them all too
            frames = [f for f in traceback.extract_tb(error.__traceback__) if is_under(Path(f.filename), dags)]
            where = frames[-1] if frames else None
            place = f"{relative(Path(where.filename), root)}:{where.lineno}" if where else relative(path, root)
            if isinstance(error, ModuleNotFoundError) and error.name:
                found.append(f"{place}: module '{error.name}' is not installed on the central site; {HOW_TO_FIX}")
            else:
                found.append(f"{place}: the central site cannot load this file: {type(error).__name__}: {error}")
    return found


def dag_files(dags: Path) -> list[Path]:
    """The files the DAG processor imports: Airflow's own discovery (safe mode, .airflowignore)."""
    from airflow.utils.file import list_py_file_paths

    return sorted(Path(p) for p in list_py_file_paths(str(dags), safe_mode=True) if p.endswith(".py"))


def is_under(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def run_probe(args: list[str]) -> int:
    dags, root, report = Path(args[0]), Path(args[1]), Path(args[2])
    report.write_text(json.dumps(probe(dags, root)))
    return 0


# --------------------------------------------------------------------------- the hook


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        return run_probe(argv[1:])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from answers import read_answers, site_facts

    answers_file = Path(".copier-answers.yml")
    if not answers_file.exists():
        print(".copier-answers.yml is missing: this repo was not rendered by edge-template (copier copy).")
        return 1
    dags = Path("dags")
    if not dags.is_dir():
        print("dags/ is missing: nothing to check.")
        return 0
    requirements = central_requirements(site_facts(read_answers(answers_file)))
    python = central_venv(requirements) / "bin" / "python"
    with tempfile.TemporaryDirectory(prefix="edge-dag-check-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags.resolve()),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        report = Path(home) / "report.json"
        probe_argv = [str(python), str(Path(__file__).resolve()), "--probe", str(dags.resolve()), str(Path.cwd())]
        result = subprocess.run(  # noqa: S603 - the cached venv's python running this file
            [*probe_argv, str(report)],
            env=env, capture_output=True, text=True, check=False,
        )
        found = json.loads(report.read_text()) if report.exists() else None
    if found is None:
        print(f"edge-template: the DAG import check could not run:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
        return 1
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} DAG file(s) would be import errors on the central site, which has only "
            f"{', '.join(requirements)}: the DAGs would not appear there and nothing would run on the worker."
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
