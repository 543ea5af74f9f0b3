from tuneforge.corpus.records import Example
from tuneforge.evaluation.rouge import metric_spec, score_examples


def test_rows_with_several_references_score_their_best_match():
    prediction = "we train a small model on scientific abstracts"
    other = "a survey of protein folding"
    single, multiple = score_examples([prediction, prediction], [[other], [other, prediction]])
    assert single["rougeL"] < 30
    assert multiple == {"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0}
    assert "best" in metric_spec()["references"]


def test_a_row_without_extra_references_is_scored_against_its_summary():
    row = Example(id="s/1", source="s", group="1", document="d", summary="the summary")
    assert row.all_references == ["the summary"]
    with_refs = row.model_copy(update={"references": ["the summary", "another one"]})
    assert with_refs.all_references == ["the summary", "another one"]
