import pytest
from pydantic import ValidationError

from tuneforge.modeling.base import BaseModelError, resolve_base_model
from tuneforge.profiles import BaseModelConfig, SplitConfig, TrainingConfig, load_profile


def test_profile_is_selected_by_environment(monkeypatch):
    monkeypatch.setenv("TUNEFORGE_PROFILE", "smoke")
    assert load_profile().base_model.kind == "random"
    monkeypatch.delenv("TUNEFORGE_PROFILE")
    assert load_profile().name == "demo"
    monkeypatch.setenv("TUNEFORGE_PROFILE", "huge")
    with pytest.raises(ValueError, match="Unknown profile 'huge'.*demo, smoke"):
        load_profile()


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: TrainingConfig(learning_rate=-1e-4), "learning_rate"),
        (lambda: TrainingConfig(lora_rank=0), "lora_rank"),
        (lambda: SplitConfig(validation_share=0.5, test_share=0.5), "validation_share"),
    ],
)
def test_invalid_settings_fail_naming_the_field(build, field):
    with pytest.raises(ValidationError, match=field):
        build()


def test_base_model_path_that_does_not_exist_names_the_fix(tmp_path):
    config = BaseModelConfig(kind="pretrained", name="mine", path=str(tmp_path / "nowhere"))
    with pytest.raises(BaseModelError, match=r"nowhere' does not exist; point base_model.path at a directory"):
        resolve_base_model(config, tmp_path / "models")


def test_changed_fingerprint_inputs_are_named_leaf_by_leaf():
    from tuneforge.fingerprint import changed_inputs

    before = {"train": "a1", "training": {"lora_rank": 16, "precision": "fp32"}, "instructions": {"s": "Sum."}}
    after = {"train": "b2", "training": {"lora_rank": 8, "precision": "fp32"}, "instructions": {"s": "Sum.", "t": "T"}}
    assert changed_inputs(before, after) == [
        'instructions.t: (absent) -> "T"', 'train: "a1" -> "b2"', "training.lora_rank: 16 -> 8",
    ]
    assert changed_inputs(after, after) == []
