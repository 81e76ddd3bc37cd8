"""The layers: raygm.core never imports Ray or Optuna."""
import pkgutil
import subprocess
import sys

import raygm.core


def test_the_core_imports_with_ray_and_optuna_blocked():
    modules = [f"raygm.core.{m.name}" for m in pkgutil.iter_modules(raygm.core.__path__)]
    assert {"raygm.core.distill", "raygm.core.evaluate", "raygm.core.machine"} <= set(modules)
    code = ("import sys\n"
            "for name in ('ray', 'optuna'):\n"
            "    sys.modules[name] = None  # import ray -> ImportError\n"
            f"for module in {modules!r}:\n"
            "    __import__(module)\n"
            "assert not any(m.split('.')[0] in ('ray', 'optuna') and sys.modules[m] is not None\n"
            "               for m in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # and the block works: a module of the studies layer fails under it
    studies = code.replace(f"for module in {modules!r}", "for module in ['raygm.studies.launch']")
    blocked = subprocess.run([sys.executable, "-c", studies], capture_output=True, text=True)
    assert blocked.returncode != 0 and "ray" in blocked.stderr
