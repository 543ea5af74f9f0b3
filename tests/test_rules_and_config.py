import pytest
from pydantic import ValidationError

from tuneforge.modeling.base import BaseModelError, resolve_base_model
from tuneforge.profiles import BaseModelConfig, SplitConfig, TrainingConfig, load_profile
from tuneforge.promotion import decide


def test_first_candidate_is_promoted_only_when_it_beats_the_base():
    assert decide("rougeL", 25.0, 19.0, None).promote
    refused = decide("rougeL", 18.0, 19.0, None)
    assert not refused.promote
    assert refused.reasons[0] == "rougeL 18.00 does not beat the base model's 19.00"


def test_candidate_must_beat_the_champion_by_the_margin():
    assert not decide("rougeL", 25.0, 19.0, 24.9, min_improvement=0.5).promote
    decision = decide("rougeL", 25.0, 19.0, 24.0, min_improvement=0.5)
    assert decision.promote
    assert decision.reasons[1] == "rougeL 25.00 beats the champion's 24.00"


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
