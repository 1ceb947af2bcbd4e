"""Param files: the original JSON files load unchanged; unknown keys and bad types are clear errors."""

import json
from pathlib import Path

import pytest

from bremen.config import IGNORED_KEYS, default_param_path, load_params
from bremen.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
ORIGINALS = ROOT.parent / "shared" / "fixtures" / "bremen-original-configs"
TASKS = ["ant", "half_cheetah", "hopper", "walker2d", "cheetah_run"]


@pytest.mark.parametrize("task", TASKS)
def test_shipped_param_files_load_with_original_values(task):
    p = load_params(default_param_path(task))
    assert p.env_name == task
    assert p.trpo.gae == (0.97 if task == "ant" else 0.95)
    assert (p.trpo.gamma, p.trpo.iterations) == (0.99, 25)
    assert (p.dynamics.hidden_size, p.dynamics.n_layers, p.dynamics.batch_size, p.dynamics.epochs) == (1024, 2, 1000, 200)
    assert p.dynamics.learning_rate == 1e-3
    assert (p.behavior_policy.total_train_steps, p.behavior_policy.batch_size, p.behavior_policy.learning_rate) == (300000, 256, 5e-4)
    assert p.policy.network_shape == [200, 200] and p.num_path_onpol == 3 and p.env_horizon == 1000
    assert p.max_train_data == 10_000_000
    assert "num_path_random" in p.ignored and "dynamics.pre_training" in p.ignored


@pytest.mark.skipif(not ORIGINALS.is_dir(), reason="original param files not present beside this checkout")
@pytest.mark.parametrize("task", TASKS)
def test_original_files_are_shipped_byte_for_byte_and_load(task):
    name = f"params_{task}_offline.json"
    assert (ORIGINALS / name).read_bytes() == default_param_path(task).read_bytes()
    assert load_params(ORIGINALS / name).env_name == task


def write(tmp_path, data):
    p = tmp_path / "params.json"
    p.write_text(json.dumps(data))
    return p


def original(task="hopper"):
    return json.loads(default_param_path(task).read_text())


def test_unknown_key_names_the_key_and_file(tmp_path):
    d = original()
    d["trpo"]["gamme"] = 0.9
    p = write(tmp_path, d)
    with pytest.raises(UserError, match=r"params.json: unknown key 'trpo.gamme'"):
        load_params(p)


def test_unknown_top_level_key(tmp_path):
    p = write(tmp_path, {**original(), "learning_rate": 1})
    with pytest.raises(UserError, match="unknown key 'learning_rate'"):
        load_params(p)


def test_wrong_type_is_an_error(tmp_path):
    d = original()
    d["dynamics"]["hidden_size"] = "big"
    with pytest.raises(UserError, match="'dynamics.hidden_size' must be int"):
        load_params(write(tmp_path, d))


def test_integral_float_accepted_for_int(tmp_path):
    d = original()
    d["max_train_data"] = 1e7
    assert load_params(write(tmp_path, d)).max_train_data == 10_000_000


def test_ignored_keys_have_no_effect_and_are_recorded(tmp_path):
    d = original()
    d["dynamics"]["reg_coeff"] = 123.0
    p = load_params(write(tmp_path, d))
    assert p.ignored["dynamics.reg_coeff"] == 123.0
    assert "reg_coeff" in IGNORED_KEYS["dynamics"]


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_params(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="bad.json: not valid JSON"):
        load_params(bad)


def test_partial_file_takes_defaults(tmp_path):
    p = load_params(write(tmp_path, {"env_name": "hopper", "trpo": {"gae": 0.9}}))
    assert p.trpo.gae == 0.9 and p.trpo.iterations == 25 and p.dynamics.hidden_size == 1024


def test_set_overrides_apply_after_the_preset():
    from bremen.experiment import resolve
    from bremen.cli.offline import build_parser

    args = build_parser().parse_args(["--env", "hopper", "--preset", "cpu", "--set", "dynamics.epochs=200",
                                         "--set", "policy.network_shape=[64, 64]", "--set", "behavior_policy.network_shape=[64,64]",
                                         "--set", "num_path_onpol=5"])
    (exp,) = resolve(args, "offline")
    assert exp.dynamics.epochs == 200 and exp.dynamics.hidden == 200  # --set wins, the rest of the preset stays
    assert exp.params.policy.network_shape == [64, 64] and exp.params.num_path_onpol == 5
    assert exp.params.ignored == load_params(default_param_path("hopper")).ignored
