"""MLflow's scoring server for runtime_bench.py: a throwaway virtual environment (kept under
~/.cache/mlc-bench, rebuilt when the wanted packages change), the credit-risk artifact saved as an
MLflow sklearn model there, and `mlflow models serve` on loopback with MLflow's default workers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from serving_process import wait_until_answers

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlc-bench"
VENV = CACHE / "mlflow-venv"
PINNED = ("scikit-learn", "skops", "numpy", "pandas")  # at our .venv's versions if they resolve
REPORTED = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "fastapi", "uvicorn")


def requirement_sets() -> list[list[str]]:
    """What to try, in order: our versions of all four, then of the model's own two (the
    artifact needs them), then whatever MLflow picks."""
    ours = {name: metadata.version(name) for name in PINNED}
    model = [f"{name}=={ours[name]}" for name in ("scikit-learn", "skops")]
    return [["mlflow", *[f"{n}=={v}" for n, v in ours.items()]], ["mlflow", *model],
            ["mlflow", "skops"]]


def ensure_venv() -> tuple[Path, list[str]]:
    """The MLflow environment and the requirements it was built from; reused while they hold."""
    python = shutil.which("python3.11")
    if python is None:
        raise SystemExit("python3.11 not found: the MLflow environment is made with it")
    stamp = VENV / ".bench-requirements"
    wanted = requirement_sets()
    if stamp.exists() and json.loads(stamp.read_text())["first"] == wanted[0]:
        return VENV, json.loads(stamp.read_text())["installed"]
    print(f"installing MLflow in a throwaway environment ({VENV}); takes a minute")
    subprocess.run([python, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, capture_output=True,
                   env=venv_env(VENV))
    for requirements in wanted:
        done = subprocess.run([*pip, *requirements], capture_output=True, text=True,
                              env=venv_env(VENV))
        if done.returncode == 0:
            stamp.write_text(json.dumps({"first": wanted[0], "installed": requirements}))
            return VENV, requirements
        print(f"pip could not install {' '.join(requirements)}; trying fewer pins")
    raise SystemExit(f"MLflow could not be installed: {done.stderr.strip()[-2000:]}")


def venv_versions(venv: Path) -> dict[str, str]:
    code = ("import json, importlib.metadata as m; "
            f"print(json.dumps({{n: m.version(n) for n in {list(REPORTED)!r}}}))")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], check=True,
                          capture_output=True, text=True, env=venv_env(venv))
    return json.loads(done.stdout)


def venv_env(venv: Path) -> dict[str, str]:
    """The MLflow environment's own: none of our PYTHONPATH or the caller's MLFLOW_ settings
    (so MLFLOW_MODELS_WORKERS cannot change MLflow's default workers), its bin first on PATH
    (`models serve` runs `uvicorn` by name)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_") and k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def save_model(venv: Path, artifact: Path, sample: Path, target: Path,
               trusted: list[str]) -> None:
    """`artifact` as an MLflow model folder at `target` (mlflow_save.py, run in `venv`)."""
    done = subprocess.run([str(venv / "bin" / "python"), str(HERE / "mlflow_save.py"),
                           str(artifact), str(sample), str(target), json.dumps(trusted)],
                          capture_output=True, text=True, env=venv_env(venv))
    if done.returncode != 0:
        raise SystemExit(f"saving the MLflow model failed: {done.stderr.strip()[-2000:]}")


@dataclass
class MlflowServer:
    """`mlflow models serve` in its own process group (it starts uvicorn as a child)."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def start_server(venv: Path, model_dir: Path, port: int, log: Path) -> MlflowServer:
    """MLflow's server on 127.0.0.1:`port`, with MLflow's default workers; its log (one line per
    request: MLflow's default) goes to `log`."""
    command = [str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir),
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=venv_env(venv), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = MlflowServer(process, f"http://127.0.0.1:{port}")
    wait_until_answers(f"{server.url}/ping", server.process, log, "mlflow models serve", 120,
                       server.stop)
    return server


def served_workers(log: Path) -> str:
    """The uvicorn workers MLflow started, as its log says (`--workers N`)."""
    match = re.search(r"--workers (\S+)", log.read_text())
    return match.group(1).strip("'") if match else "unknown"
