"""The wheel carries the templates and saved objects: installed anywhere, bootstrap finds them.

An sdist is built from what the worker image copies (``python -m build``), the wheel from
that sdist (pip, isolated build), so both carry the files. The wheel is installed into a
fresh virtual environment, and run from an empty temporary folder against the real test
cluster. The new environment gets its dependencies from the environment running the tests
(a ``.pth`` line), never the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ElasticsearchTarget

pytestmark = [pytest.mark.elasticsearch]

REPO = Path(__file__).resolve().parents[1]


def run(*args: str | Path, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command without PYTHONPATH, so nothing is imported from the checkout."""
    env = {k: v for k, v in (os.environ if env is None else env).items() if k != "PYTHONPATH"}
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, env=env, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_installed_wheel_bootstraps_from_any_folder(es: ElasticsearchTarget, tmp_path: Path) -> None:
    source, dist = tmp_path / "source", tmp_path / "dist"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):  # what the worker image builds from, nothing else
        shutil.copy(REPO / name, source / name)
    for folder in ("pipeline", "elasticsearch", "kibana"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    run(sys.executable, "-m", "build", "--sdist", "--outdir", dist, source)
    [sdist] = dist.glob("rq_task_time-*.tar.gz")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, sdist)
    [wheel] = dist.glob("rq_task_time-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for source in [*REPO.glob("elasticsearch/*/*.json"), *REPO.glob("kibana/*/*.json")]:
        assert f"pipeline/bootstrap/bundled/{source.relative_to(REPO)}" in names, source

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(deps)))
    run(python, "-m", "pip", "install", "--no-deps", "--quiet", wheel)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = run(python, "-c", "from pipeline.bootstrap.assets import find_assets; print(find_assets())", cwd=elsewhere)
    assert Path(found.stdout.strip()) == site / "pipeline" / "bootstrap" / "bundled"

    env = es.bootstrap_env()
    first = run(python, "-m", "pipeline.bootstrap", "--skip-kibana", cwd=elsewhere, env=env)
    assert "index template task-time: created (v1)" in first.stdout
    assert es.client().indices.get_index_template(name="task-time")["index_templates"]
    second = run(python, "-m", "pipeline.bootstrap", "--skip-kibana", cwd=elsewhere, env=env)
    assert "bootstrap: done: nothing changed" in second.stdout
    count = "from pipeline.bootstrap.assets import find_assets as f; from pipeline.bootstrap.saved_objects import "
    count += "load_saved_objects as l; print(len(l(f())))"
    assert run(python, "-c", count, cwd=elsewhere).stdout.strip() == str(len(list(REPO.glob("kibana/*/*.json"))))
