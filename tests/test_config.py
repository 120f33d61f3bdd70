"""params.yaml layout (base + per-profile overrides) and the type / range checks of parameters."""
import argparse
from pathlib import Path

import pytest
import yaml

from facefill import config, pipeline
from facefill.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _params(**profiles):
    base = {"nb": {"steps": 400, "width": 64, "n_train": None}}
    return {"profile": "default", "seed": 0, "base": base, **{p: {"nb": {}} for p in config.PROFILES}, **profiles}


def _write(tmp_path, params) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


# ------------------------------------------------------------------ layout

def test_section_is_base_updated_with_the_profile_override():
    p = _params(smoke={"nb": {"steps": 6}})
    assert config.section(p, "nb", "smoke") == {"steps": 6, "width": 64, "n_train": None}
    assert config.section(p, "nb", "default") == p["base"]["nb"]
    assert config.section(p, "nb") == p["base"]["nb"]  # the active profile


def test_an_override_key_missing_from_base_is_an_error_with_a_hint():
    p = _params(paper={"nb": {"stepz": 6}})
    with pytest.raises(ConfigError, match=r"\['stepz'\] in params.yaml paper.nb .*Did you mean 'steps'"):
        config.section(p, "nb", "paper")


def test_a_profile_without_the_section_is_told_to_write_an_empty_mapping(tmp_path):
    p = _params()
    del p["paper"]["nb"]
    with pytest.raises(ConfigError, match=r"add `nb: \{\}` under `paper:`"):
        config.section(p, "nb", "paper")
    with pytest.raises(ConfigError, match=r"add `nb: \{\}` under `paper:`"):
        config.load_params(_write(tmp_path, p))


def test_load_params_checks_the_structure(tmp_path):
    with pytest.raises(ConfigError, match="unknown section.*Did you mean 'nb'"):
        config.load_params(_write(tmp_path, _params(smoke={"nb": {}, "nbb": {}})))
    with pytest.raises(ConfigError, match="only change keys of base.nb"):
        config.load_params(_write(tmp_path, _params(smoke={"nb": {"depth": 3}})))
    with pytest.raises(ConfigError, match="must be a mapping"):
        config.load_params(_write(tmp_path, _params(smoke={"nb": None})))
    old_layout = {"profile": "smoke", "smoke": {"nb": {"steps": 6}}}
    with pytest.raises(ConfigError, match="no `base:`"):
        config.load_params(_write(tmp_path, old_layout))
    # a params.yaml without notebook sections is fine (facefill.scorecard's test projects)
    assert config.load_params(_write(tmp_path, {"profile": "smoke", "seed": 0}))["seed"] == 0


def test_every_profile_of_the_project_lists_every_base_section():
    for profile in config.PROFILES:
        assert list(PARAMS[profile]) == list(PARAMS["base"]), profile
        for name, override in PARAMS[profile].items():
            assert isinstance(override, dict)
            assert set(override) <= set(PARAMS["base"][name])
            assert all(override[k] != PARAMS["base"][name][k] or type(override[k]) is not type(PARAMS["base"][name][k])
                       for k in override), f"{profile}.{name} repeats a base value"


# ------------------------------------------------------------------ types and ranges

def _check(name, value, default, style="yaml"):
    return config.check_value(name, value, config.Spec.from_default(name, default), style)


@pytest.mark.parametrize("name, value, default", [
    ("lr", 1, 0.1),                  # an int is a fine float
    ("lr", 0.5, 0.1),
    ("steps", 6, 400),
    ("n_train", None, 64),           # NULLABLE: null = all
    ("vgg_weights", "w.pth", None),  # a None default accepts anything
    ("data_dir", 3, None),
    ("channels_last", False, True),
    ("datasets", ["lfw"], ["celeba-hq", "lfw"]),
    ("snapshot_steps", [1, 5], [1, 2, 3]),
    ("sample_every", 0, 100),        # 0 = only at the end
    ("lr_decay_every", 0, 0),
])
def test_acceptable_values(name, value, default):
    assert _check(name, value, default) is None


@pytest.mark.parametrize("name, value, default, message", [
    ("steps", "6", 6, 'steps="6" must be an int (write steps: 6)'),
    ("steps", 6.0, 6, "steps=6.0 must be an int (write steps: 6)"),  # never silently truncated
    ("steps", 6.5, 6, "steps=6.5 must be an int (write e.g. steps: 6)"),
    ("steps", True, 6, "steps=true must be an int"),                # bool is not an int
    ("channels_last", 1, True, "channels_last=1 must be true or false (write channels_last: true)"),
    ("lr", "1e-3", 0.1, 'lr="1e-3" must be a number (write lr: 0.001)'),
    ("content_layer", 3, "3", 'content_layer=3 must be a string (write content_layer: "3")'),
    ("datasets", "lfw", ["celeba-hq"], 'datasets="lfw" must be a list of strings (write datasets: ["lfw"])'),
    ("n_train", "all", 64, 'n_train="all" must be an integer or null (write n_train: null or e.g. n_train: 64)'),
    ("n_test", 0, 16, "n_test=0 must be >= 1"),
    ("n_boot", 0, 1000, "n_boot=0 must be >= 1"),
    ("batch_size", -1, 16, "batch_size=-1 must be >= 1"),
    ("eval_batch_size", 0, 16, "eval_batch_size=0 must be >= 1"),
    ("d_width", 0, 8, "d_width=0 must be >= 1"),
    ("ce64_steps", 0, 3, "ce64_steps=0 must be >= 1"),
    ("sample_every", -5, 0, "sample_every=-5 must be >= 0"),
    ("checkpoint_every", 0, 3, "checkpoint_every=0 must be >= 1"),
    ("lr", 0, 0.1, "lr=0 must be > 0"),
    ("beta1", 1.0, 0.5, "beta1=1.0 must lie in [0, 1)"),
    ("snapshot_steps", [0, 2], [1, 2], "snapshot_steps=[0, 2] must be >= 1 (every element)"),
])
def test_bad_values_name_the_parameter_the_value_and_the_fix(name, value, default, message):
    assert _check(name, value, default).startswith(message)


def test_notebook_style_fixes_say_how_to_pass_it_to_papermill():
    assert _check("steps", '"6"', 6, "notebook") == (
        "steps='\"6\"' must be an int (pass -p steps 6 to papermill, or write steps = 6 in the parameters cell)")
    assert "-r content_layer 3" in _check("content_layer", 3, "3", "notebook")


def test_check_parameters_names_the_origin_and_lists_every_error():
    with pytest.raises(ConfigError) as e:
        config.check_parameters({"steps": "6", "n_test": 0, "width": 8}, {"steps": 6, "n_test": 16, "width": 16},
                                "params.yaml default.context_encoder")
    assert str(e.value).splitlines() == [
        'params.yaml default.context_encoder: steps="6" must be an int (write steps: 6)',
        "params.yaml default.context_encoder: n_test=0 must be >= 1",
    ]


def test_pipeline_check_catches_a_bad_value_in_a_profile():
    bad = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad["default"]["multiscale"] = {"steps": "6"}
    values = pipeline.notebook_parameters("multiscale", "default", bad, ROOT)
    with pytest.raises(ConfigError, match=r'^params.yaml default.multiscale: steps="6" must be an int \(write steps: 6\)$'):
        pipeline.check_against_notebook("multiscale", values, ROOT, where="params.yaml default.multiscale")


def test_data_and_seed_are_checked_when_params_yaml_is_read(tmp_path):
    p = _params(data={"dir": None, "processed_dir": "data/processed", "limit": "ten", "variants": ["lfw/default/250"]})
    with pytest.raises(ConfigError, match=r'data.limit="ten" must be an integer or null \(write limit: null or e.g. limit: 1000\)'):
        config.load_params(_write(tmp_path, p))
    p["data"]["limit"] = 0
    with pytest.raises(ConfigError, match=r"data.limit=0 must be >= 1"):
        config.load_params(_write(tmp_path, p))
    p["data"]["limit"] = None
    p["seed"] = 1.5
    with pytest.raises(ConfigError, match=r"seed=1.5 must be an int"):
        config.load_params(_write(tmp_path, p))
    p["seed"] = 0
    p["data"]["limt"] = 3
    with pytest.raises(ConfigError, match="Did you mean 'limit'"):
        config.load_params(_write(tmp_path, p))


def test_positive_int_is_an_argparse_type():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=config.positive_int)
    assert parser.parse_args(["--batch-size", "32"]).batch_size == 32
    for bad, why in (("0", "0 is not >= 1"), ("-3", "-3 is not >= 1"), ("ten", "'ten' is not an integer")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            config.positive_int(bad)
        with pytest.raises(SystemExit):
            parser.parse_args(["--batch-size", bad])


def test_every_range_rule_matches_a_parameter_of_some_notebook():
    """The table stays small and live: each pattern names at least one declared parameter."""
    from facefill.notebooks import declared_parameters

    names = set()
    for py in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"):
        names |= set(declared_parameters(py))
    import fnmatch

    dead = [pat for pat, _ in config.RANGES if not fnmatch.filter(names, pat)]
    assert not dead, f"range rules matching no notebook parameter: {dead}"


def test_bench_refuses_a_zero_batch_size(capsys):
    from facefill import bench

    with pytest.raises(SystemExit) as e:
        bench.main(["--batch-size", "0"])
    assert e.value.code == 2
    assert "--batch-size: 0 is not >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------ issue 21: device and precision names

@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3", "mps"])
def test_device_names_accepted(value):
    assert config.device_problem(value) is None
    assert _check("device", value, "auto") is None


def test_pipeline_check_refuses_an_unknown_device_or_precision():
    bad = yaml.safe_load((ROOT / "params.yaml").read_text())
    bad["default"]["context_encoder"] = {"device": "gpu", "precision": "fp64"}
    values = pipeline.notebook_parameters("context_encoder", "default", bad, ROOT)
    with pytest.raises(ConfigError) as e:
        pipeline.check_against_notebook("context_encoder", values, ROOT, where="params.yaml default.context_encoder")
    assert str(e.value).splitlines() == [
        "params.yaml default.context_encoder: precision='fp64' is not supported: use one of fp32, bf16, fp16, auto (e.g. 'fp32')",
        "params.yaml default.context_encoder: device='gpu' is not a device: use one of auto, cpu, cuda, cuda:N (e.g. cuda:0) "
        "or mps, e.g. 'cuda' (or 'auto': CUDA when present, else the CPU)",
    ]


def test_resolve_device_names_the_allowed_values(monkeypatch):
    from facefill import runtime

    for bad in ("gpu", "cuda1", "CPU", ""):
        with pytest.raises(ConfigError, match=r"is not a device: use one of auto, cpu, cuda, cuda:N \(e.g. cuda:0\) or mps"):
            runtime.resolve_device(bad)
    monkeypatch.setenv("FACEFILL_DEVICE", "gpu")
    with pytest.raises(ConfigError, match=r"^FACEFILL_DEVICE='gpu' is not a device"):
        runtime.resolve_device("auto")
    monkeypatch.delenv("FACEFILL_DEVICE")
    assert str(runtime.resolve_device("cpu")) == "cpu"
    with pytest.raises(ConfigError, match=r"^precision='fp64' is not supported: use one of fp32, bf16, fp16, auto"):
        runtime.resolve_precision("fp64", runtime.resolve_device("cpu"))


def test_a_bad_device_on_the_command_line_is_one_line(capsys):
    from facefill import bench

    assert pipeline.main(["estimate", "--device", "gpu", "--stages", "context_encoder"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facefill: error: device='gpu' is not a device: use one of auto, cpu, cuda")
    assert bench.main(["--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("facefill: error: device='gpu' is not a device")


def test_bench_help_lists_the_models(capsys):
    from facefill import bench

    with pytest.raises(SystemExit):
        bench.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("ce128", "mce250_add", "dcgan64", "semantic64", "srgan64x2"):
        assert name in text, name
    with pytest.raises(SystemExit) as e:
        bench.main(["--models", "ce999"])
    assert e.value.code == 2 and "unknown model(s) ['ce999']; choose from ce128" in capsys.readouterr().err
