import torch

from tuneforge.modeling.prompts import encode_for_training
from tuneforge.modeling.train import collate, length_grouped_batches, summary_loss


def _tiny(smoke_base_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = next(smoke_base_models.iterdir())
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def test_loss_covers_only_the_summary_and_matches_the_full_projection(smoke_base_models):
    model, tokenizer = _tiny(smoke_base_models)
    examples = [
        encode_for_training(tokenizer, "Summarize.", "A long document " * n, f"summary number {n}", 96)
        for n in (3, 20, 40)
    ]
    summary_ids = tokenizer("summary number 3", add_special_tokens=False)["input_ids"]
    targets = [t for t in examples[0].labels if t != -100]
    assert targets[: len(summary_ids)] == summary_ids
    assert all(len(e.input_ids) <= 96 for e in examples)

    batch = collate(examples, pad_id=tokenizer.eos_token_id)
    with torch.no_grad():
        reference = model(**batch).loss
        ours = summary_loss(model, batch)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)


def test_length_grouped_batches_cover_every_row_each_epoch_with_little_padding():
    lengths = [10, 500, 12, 480, 11, 490, 13, 470]
    stream = length_grouped_batches(lengths, batch_size=2, seed=0)
    epoch = [next(stream) for _ in range(4)]
    assert sorted(i for batch in epoch for i in batch) == list(range(8))
    for batch in epoch:
        widths = [lengths[i] for i in batch]
        assert max(widths) - min(widths) <= 30
