"""The cross-architecture table from hand-made committed studies."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import cross_arch

from test_results_page import ON_CONVNET, OWN, SEEDS, noise, shift, write_models_study


def test_cells_are_each_sets_latest_evaluation_averaged_over_seeds(tmp_path):
    evaluations = write_models_study(tmp_path, "models_test", "MNIST", OWN)
    # an earlier, shorter evaluation of every set on ConvNet: the longer one counts
    shorter = evaluations[evaluations.arch == "ConvNet"].assign(epochs=300, acc_mean=0.0)
    pq.write_table(pa.Table.from_pandas(pd.concat([evaluations, shorter]), preserve_index=False),
                   tmp_path / "models_test" / "evaluations.parquet")
    section = cross_arch.cross_arch([tmp_path / "models_test"], tmp_path)
    table = section.tables[0].frame.set_index(["matched on", "evaluated on"])
    assert len(table) == 5  # 3 on their own network, MLP and LeNet also on ConvNet
    expected = 100 * np.array([ON_CONVNET["MLP"] + shift(s) + noise("MLPConvNet", s)
                               for s in SEEDS])
    cell = table.loc[("MLP", "ConvNet")]
    assert cell["n"] == 5 and cell["mean %"] == pytest.approx(expected.mean())
    assert cell["95% CI ± %"] == pytest.approx(2.776445 * expected.std(ddof=1) / np.sqrt(5))
    assert (tmp_path / "cross_arch.png").stat().st_size > 0


def test_without_re_evaluations_it_says_what_to_run(tmp_path):
    write_models_study(tmp_path, "models_test", "MNIST", OWN)
    section = cross_arch.cross_arch([tmp_path / "models_test"], tmp_path, protocol="study")
    assert not section.images and "raygm evaluate" in section.notes[0]
