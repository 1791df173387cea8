"""What the trackers log, named the same in each: flattened config, epoch scalars, final metrics."""

from vaelab.tracking.content import epoch_scalars, final_metrics, flatten, safe_key, text


def test_flatten_joins_nested_keys():
    tree = {"loss": {"beta": 0.5, "free_bits": 2.0}, "seed": 0, "sweep": {"pruner_options": {}}, "model": {"kernels": [3, 5]}}
    assert flatten(tree) == {"loss.beta": 0.5, "loss.free_bits": 2.0, "seed": 0, "sweep.pruner_options": {}, "model.kernels": [3, 5]}
    assert flatten({"a": {"b": 1}}, separator="/") == {"a/b": 1}


def test_epoch_scalars_are_the_numeric_columns_but_the_epoch():
    assert epoch_scalars({"epoch": 2, "beta": 0.5, "val_kl": 1, "note": "x"}) == {"beta": 0.5, "val_kl": 1.0}


def test_final_metrics_are_the_numeric_entries_of_metrics_json():
    result = {
        "status": "ok",
        "kl": 3.5,
        "active_units": 4,
        "stopped_early": False,
        "kl_per_dim": [1.0, 2.5],
        "factor_r2": {"trend": 0.9, "episode rate": 0.1},
        "best_val_loss": None,
    }
    assert final_metrics(result) == {
        "final/kl": 3.5,
        "final/active_units": 4.0,
        "final/factor_r2/trend": 0.9,
        "final/factor_r2/episode rate": 0.1,
    }


def test_names_and_values_fit_mlflow():
    assert safe_key("final/recon (1-4h)") == "final/recon _1-4h_"
    assert text(None) == "null" and text([1, "a"]) == '[1, "a"]' and text(0.5) == "0.5" and text(True) == "True"
