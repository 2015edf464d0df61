"""What `read` is told (`ReadOptions`: where the data is, how its columns map onto the
corpus) and what it gives back (`Loaded`: the corpus, the rows it could not take, the key
of the input)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from assay.curate.labelstudio.export import DEFAULT_RULE, LabelRule

Format = Literal["auto", "csv", "tsv", "jsonl", "parquet", "hf", "labelstudio"]


class ReadOptions(BaseModel):
    """Where the data is and how its columns map onto the corpus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        description="a file or directory path, a dataset name from `assay data list`, or a Hugging Face id"
    )
    format: Format = Field("auto", description="input format; auto guesses from the path")
    text_column: str = Field("text", description="column holding the text")
    label_column: str | None = Field(
        "label", description="column holding the label(s); null for unlabelled data"
    )
    id_column: str | None = Field(
        None, description="column with unique example keys; content hashes if unset"
    )
    split_column: str | None = Field(
        None, description="column with train/dev/test; splits are kept as given"
    )
    group_column: str | None = Field(
        None, description="column naming the source document/author; splits keep groups together"
    )
    lang_column: str | None = Field(None, description="column with a BCP-47 language code per row")
    lang: str = Field("en", description="language of every row when lang_column is unset")
    split: str | None = Field(None, description="put every row in this split")
    labels: list[str] | None = Field(
        None, description="the declared label set; other labels are an error"
    )
    label_map: dict[str, str] | None = Field(
        None, description="rename raw label values, e.g. {'0': 'negative'}"
    )
    multilabel: bool = Field(
        False, description="labels are lists (or delimited strings with label_separator)"
    )
    label_separator: str | None = Field(
        None, description="split string labels on this separator (implies multilabel)"
    )
    encoding: str = Field("utf-8", description="text encoding of CSV/TSV/JSONL files, e.g. latin-1")
    strict: bool = Field(
        False, description="null or empty text is an error instead of a recorded drop"
    )
    limit: int | None = Field(None, ge=1, description="read only the first N rows")
    annotations: LabelRule = Field(
        DEFAULT_RULE,
        description="Label Studio exports: the label of a task with several annotations; "
        "latest (newest non-cancelled), majority (annotators' consensus; ties unlabelled) "
        "or all (majority, and every annotation kept in labelstudio__annotations)",
    )
    config: str | None = Field(
        None, description="Hugging Face dataset configuration name (`sst2` of nyu-mll/glue)"
    )
    source_split: str | None = Field(
        None, description="Hugging Face split(s) to read, e.g. train or train[:1000]; all if unset"
    )
    revision: str | None = Field(
        None, description="Hugging Face dataset revision: a branch, tag or commit"
    )
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        None,
        description="data files for a Hugging Face builder source (csv, json, parquet, text) "
        "or of a local folder, e.g. {train: a.parquet, test: b.parquet}",
    )

    def hub_options(self) -> dict[str, Any]:
        """The load_dataset arguments that are set."""
        given = {
            "name": self.config,
            "split": self.source_split,
            "revision": self.revision,
            "data_files": self.data_files,
        }
        return {k: v for k, v in given.items() if v is not None}


@dataclasses.dataclass
class Loaded:
    corpus: pl.DataFrame
    dropped: pl.DataFrame
    rows_read: int
    input_hash: str
    source: str
    # What was read but looks wrong (short rows, a repeated header...): in the manifest.
    warnings: list[str] = dataclasses.field(default_factory=list)
