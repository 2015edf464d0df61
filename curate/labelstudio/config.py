"""Label Studio projects for a corpus: the label config, creating one, attaching to one.

The generated config shows the example text and one Choices control over the corpus's
label set (`choice="multiple"` for multi-label corpora). Attaching to an existing project
checks that its config has a Choices control over the text and the corpus's labels.
"""

from __future__ import annotations

import dataclasses
import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from assay.curate.labelstudio.client import Client
from assay.errors import InputError

log = logging.getLogger(__name__)

TEXT_KEY = "text"
ID_KEY = "assay_id"
FROM_NAME = "label"
TO_NAME = "text"
# Review projects: the label under review is shown above the text, and reviewers may
# reject the example with this extra choice (the pull drops it).
GIVEN_KEY = "assay_given_label"
REJECT = "reject: not a valid example"


@dataclasses.dataclass(frozen=True)
class LabelConfig:
    """What assay needs from a project's config: control names, labels, multi-label or not."""

    labels: tuple[str, ...]
    multilabel: bool
    from_name: str = FROM_NAME
    to_name: str = TO_NAME
    text_key: str = TEXT_KEY

    def result(self, label: str | Sequence[str]) -> list[dict[str, Any]]:
        """An annotation or prediction `result` choosing `label` (a list when multi-label)."""
        choices = [label] if isinstance(label, str) else list(label)
        return [
            {
                "from_name": self.from_name,
                "to_name": self.to_name,
                "type": "choices",
                "value": {"choices": choices},
            }
        ]


def label_config_xml(labels: Sequence[str], multilabel: bool = False) -> str:
    """The Label Studio XML config for a text classification over `labels`."""
    if not labels:
        raise InputError(
            "cannot build a labelling config without labels: the corpus has no labelled rows; "
            "pass the label set explicitly (--labels a,b,c, or labels: [...] in a recipe step)"
        )
    choice = "multiple" if multilabel else "single"
    lines = [
        "<View>",
        f'  <Text name="{TO_NAME}" value="${TEXT_KEY}"/>',
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="{choice}" showInline="true">',
        *[f"    <Choice value={quoteattr(str(label))}/>" for label in labels],
        "  </Choices>",
        "</View>",
    ]
    return "\n".join(lines)


def review_config_xml(labels: Sequence[str], multilabel: bool = False) -> str:
    """A review project's config: the given label, the text, the labels and a reject choice."""
    if REJECT in labels:
        raise InputError(f"the label {REJECT!r} is reserved for rejecting examples in review")
    xml = label_config_xml([*labels, REJECT], multilabel)
    given = (
        '  <Header value="Label under review:"/>\n'
        f'  <Text name="given" value="${GIVEN_KEY}"/>\n'
        '  <Header value="Example:"/>\n'
    )
    return xml.replace("<View>\n", "<View>\n" + given, 1)


def parse_label_config(xml: str) -> LabelConfig:
    """Find the Choices control over a Text tag and read its labels."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(f"the project's label config is not valid XML: {exc}") from None
    texts = {t.get("name"): t.get("value", "") for t in root.iter("Text")}
    for choices in root.iter("Choices"):
        to_name = choices.get("toName", "")
        if to_name in texts:
            labels = tuple(c.get("value") or c.get("alias") or "" for c in choices.iter("Choice"))
            return LabelConfig(
                labels=labels,
                multilabel=choices.get("choice", "single") == "multiple",
                from_name=choices.get("name", FROM_NAME),
                to_name=to_name,
                text_key=texts[to_name].lstrip("$") or TEXT_KEY,
            )
    raise InputError(
        "the project's label config has no <Choices> control over a <Text> tag; assay syncs "
        "text classification projects (create one with `assay ls init`)"
    )


def check_config(config: LabelConfig, labels: Sequence[str], multilabel: bool) -> None:
    """The project must offer every corpus label, with the same single/multi choice."""
    problems = []
    missing = sorted(set(labels) - set(config.labels))
    if missing:
        problems.append(f"labels {missing} of the corpus are not choices in the project")
    if config.multilabel != multilabel:
        want = "multiple" if multilabel else "single"
        have = "multiple" if config.multilabel else "single"
        problems.append(f'the corpus needs choice="{want}", the project has choice="{have}"')
    if problems:
        raise InputError(
            "the project's label config does not match the corpus: "
            + "; ".join(problems)
            + f" (project labels {list(config.labels)}); edit the project's labelling "
            "interface or create a new project with `assay ls init`"
        )


@dataclasses.dataclass(frozen=True)
class Project:
    id: int
    title: str
    config: LabelConfig
    created: bool = False
    task_number: int = 0


def find_project(client: Client, project: int | str) -> Any | None:
    """A project by id (an int or digits) or by exact title; None if there is none.

    Call it through `client.call` so that transport and API errors read clearly.
    """
    sdk = client.sdk
    if isinstance(project, int) or str(project).isdigit():
        from label_studio_sdk.core.api_error import ApiError

        try:
            return sdk.projects.get(id=int(project))
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise
    for p in sdk.projects.list(title=str(project)):
        if p.title == project:
            return sdk.projects.get(id=p.id)
    return None


def get_project(client: Client, project: int | str) -> Project:
    """An existing project; a clear error if it does not exist."""
    found = client.call(f"read project {project!r}", find_project, client, project)
    if found is None:
        raise InputError(
            f"Label Studio at {client.url} has no project {project!r}; create it with "
            "`assay ls init`"
        )
    return _project(found)


def _project(found: Any, created: bool = False) -> Project:
    return Project(
        id=int(found.id),
        title=str(found.title or ""),
        config=parse_label_config(found.label_config or ""),
        created=created,
        task_number=int(getattr(found, "task_number", 0) or 0),
    )


def init_project(
    client: Client,
    project: int | str,
    labels: Sequence[str],
    multilabel: bool = False,
    *,
    review: bool = False,
) -> Project:
    """Attach to `project` (checking its config) or create it with a generated config.

    `review` creates a review project (`review_config_xml`) and, attaching, checks that the
    project offers the reject choice.
    """
    found = client.call(f"read project {project!r}", find_project, client, project)
    if found is not None:
        attached = _project(found)
        check_config(attached.config, [*labels, REJECT] if review else labels, multilabel)
        log.info("attached to project %d (%s)", attached.id, attached.title)
        return attached
    if isinstance(project, int) or str(project).isdigit():
        raise InputError(
            f"Label Studio at {client.url} has no project with id {project}; pass a title to "
            "create one"
        )
    xml = review_config_xml(labels, multilabel) if review else label_config_xml(labels, multilabel)
    made = client.call(
        f"create project {project!r}",
        client.sdk.projects.create,
        title=str(project),
        label_config=xml,
        description="Synced by assay: task.data.assay_id is the corpus example id.",
    )
    log.info("created project %d (%s) with %d labels", made.id, project, len(labels))
    return Project(
        id=int(made.id),
        title=str(project),
        config=parse_label_config(xml),
        created=True,
        task_number=0,
    )
