"""The results page's own data (analysis.questions, the model order) and that the analysis
reads committed results without torch."""
import subprocess
import sys
from pathlib import Path

from analysis import common
from analysis.questions import DC_CONVNET, PAGE_ORDER, QUESTIONS
from raygm.core.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]

# `import torch` fails as where torch is not installed. Not sys.modules['torch'] = None:
# scipy.stats takes any torch entry in sys.modules for a loaded torch and fails on None.
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'torch':
            raise ModuleNotFoundError(f'No module named {name!r}')

sys.meta_path.insert(0, NoTorch())
"""


def test_the_analysis_reads_committed_results_without_torch():
    code = NO_TORCH + """
from analysis import common, cross_arch, results_page, search
results = common.load('results/models_2h')
assert len(results.finished) == 15, len(results.finished)
assert '| DC | `models_2h` |' in results_page.table_one([results.root])
try:  # the block blocks
    import raygm.core.config
except ImportError:
    pass
else:
    raise SystemExit('raygm.core.config imported: torch was not blocked')
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_dcs_convnet_is_the_one_raygm_runs_by_default():
    """Table 1's DC and DSA rows are the trials with DC's ConvNet; a study that leaves the
    ConvNet settings alone runs it."""
    assert DC_CONVNET == {name: getattr(RunConfig(), name) for name in DC_CONVNET}


def test_the_page_orders_every_question():
    assert sorted(PAGE_ORDER) == sorted(QUESTIONS)


def test_models_unknown_to_the_page_come_last_sorted():
    assert common.model_order({"ZNet", "LeNet", "ANet", "MLP"}) == ["MLP", "LeNet", "ANet",
                                                                      "ZNet"]


def test_the_page_shows_models_in_the_registrys_order():
    """MODEL_ORDER is written out so reading results needs no torch; it must follow MODELS."""
    from raygm.core.models import MODELS
    assert common.MODEL_ORDER == tuple(MODELS)
