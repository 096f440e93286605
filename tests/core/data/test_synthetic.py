import pytest
import torch

from ssmkit.data import synthetic
from ssmkit.data.checks import check_finite
from ssmkit.data.synthetic import IGNORE


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_selective_copy_targets_are_the_data_tokens_in_order():
    x, y = synthetic.selective_copy(50, 20, 5, 6, gen())
    assert x.shape == y.shape == (50, 25)
    assert bool((x[:, 20:] == 7).all()) and bool((y[:, :20] == IGNORE).all())
    for row_x, row_y in zip(x, y, strict=True):
        data = row_x[:20][row_x[:20] > 0]
        assert data.tolist() == row_y[20:].tolist() and len(data) == 5
    assert torch.equal(
        synthetic.selective_copy(4, 20, 5, 6, gen(1))[0], synthetic.selective_copy(4, 20, 5, 6, gen(1))[0]
    )


def test_associative_recall_targets_are_the_paired_values():
    x, y = synthetic.associative_recall(30, 6, 4, 32, gen())
    assert x.shape == (30, 16)
    for row_x, row_y in zip(x, y, strict=True):
        pairs = dict(zip(row_x[0:12:2].tolist(), row_x[1:12:2].tolist(), strict=True))
        assert len(pairs) == 6 and all(k < 16 <= v for k, v in pairs.items())
        assert [pairs[k] for k in row_x[12:].tolist()] == row_y[12:].tolist()
    with pytest.raises(ValueError, match="needs vocab_size"):
        synthetic.associative_recall(1, 20, 1, 16, gen())


def test_induction_heads_target_follows_the_trigger():
    x, y = synthetic.induction_heads(40, 16, 8, gen())
    for row_x, row_y in zip(x, y, strict=True):
        triggers = (row_x == 0).nonzero()[:, 0].tolist()
        assert len(triggers) == 2 and triggers[1] == 15
        assert row_y[-1] == row_x[triggers[0] + 1] and bool((row_y[:-1] == IGNORE).all())


def test_icl_regression_least_squares_is_exact_without_noise():
    feats, xs, ys = synthetic.icl_regression(8, 10, 3, 0.0, gen())
    assert feats.shape == (8, 20, 5)
    torch.testing.assert_close(feats[:, 0::2, :3], xs)
    torch.testing.assert_close(feats[:, 1::2, 3], ys)
    preds = synthetic.least_squares_predictions(xs, ys)
    torch.testing.assert_close(preds[:, 4:], ys[:, 4:], atol=1e-4, rtol=1e-4)  # determined once i > dim
    assert bool((preds[:, 0] == 0).all())


def test_sequential_digits_ships_with_scikit_learn():
    images, labels = synthetic.sequential_digits()
    assert images.shape == (1797, 64, 1) and set(labels.tolist()) == set(range(10))
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_check_finite_names_the_sample():
    values = torch.zeros(5, 3)
    values[3, 1] = float("nan")
    with pytest.raises(ValueError, match="train set: sample 3 contains NaN"):
        check_finite("train set", values)
    values[3, 1] = float("inf")
    with pytest.raises(ValueError, match="sample 3 contains inf"):
        check_finite("train set", values)


def test_data_module_names_the_bad_sample_at_setup(monkeypatch):
    from ssmkit.synthetic.datamodules import ICLRegressionData

    dm = ICLRegressionData(n_points=4, dim=2, n_train=8, n_val=4, batch_size=4)
    original = dm.generate

    def with_nan(n, generator):
        features, xs, ys = original(n, generator)
        features[5, 2, 0] = float("nan")
        return features, xs, ys

    monkeypatch.setattr(dm, "generate", with_nan)
    with pytest.raises(ValueError, match="ICLRegressionData train set, tensor 0: sample 5 contains NaN"):
        dm.setup("fit")
