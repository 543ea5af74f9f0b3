"""Instructions as versioned prompts in MLflow's prompt registry.

Each source's instruction is a prompt named ``tuneforge-<source>``: its template is the user turn the adapter is
trained and served with (the instruction, a blank line, ``{{document}}``). A new version is registered only when the
text changes, so every adapter, evaluation and model card can name the exact version it used
(``prompts:/tuneforge-<source>/<version>``), and the versions a promoted adapter was trained with carry the
``champion`` alias.
"""

from __future__ import annotations

import re

from tuneforge.modeling.prompts import USER_TEMPLATE

PREFIX = "tuneforge-"
CHAMPION_ALIAS = "champion"
LINKED_PROMPTS_TAG = "mlflow.linkedPrompts"


def prompt_name(source: str) -> str:
    return PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", source)


def template_for(instruction: str) -> str:
    """The user turn as an MLflow prompt template (MLflow's variables are double-braced)."""
    return USER_TEMPLATE.format(instruction=instruction, document="{{document}}")


def register_instructions(client, instructions: dict[str, str], tags: dict[str, str] | None = None) -> dict[str, str]:
    """Register each source's instruction where its text is new; ``{source: prompt URI}`` of the versions in use."""
    uris = {}
    for source, instruction in sorted(instructions.items()):
        name, template = prompt_name(source), template_for(instruction)
        latest = _latest(client, name)
        if latest is None or latest.template != template:
            latest = client.register_prompt(
                name=name, template=template, commit_message=f"instruction of source {source!r}",
                tags={"source": source, **(tags or {})},
            )
        uris[source] = f"prompts:/{name}/{latest.version}"
    return uris


def link_to_run(client, run_id: str, uris: dict[str, str]) -> None:
    """Show the prompt versions on the MLflow run that used them (the run's ``mlflow.linkedPrompts`` tag, which the
    MLflow UI reads). Written through ``client``: MLflow's own ``link_prompt_version_to_run`` looks the run up in
    the process-wide tracking store, which need not be the client's."""
    from mlflow.tracing.utils.prompt import update_linked_prompts_tag

    current = client.get_run(run_id).data.tags.get(LINKED_PROMPTS_TAG)
    value = update_linked_prompts_tag(current, [client.load_prompt(uri) for uri in uris.values()])
    if value != current:
        client.set_tag(run_id, LINKED_PROMPTS_TAG, value)


def set_alias(client, uris: dict[str, str], alias: str = CHAMPION_ALIAS) -> None:
    for uri in uris.values():
        name, version = uri.removeprefix("prompts:/").rsplit("/", 1)
        client.set_prompt_alias(name, alias, int(version))


def _latest(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.load_prompt(f"prompts:/{name}@latest")
    except MlflowException:
        return None
