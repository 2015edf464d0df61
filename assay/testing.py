"""Tiny randomly initialised models, built on disk offline: for tests and benchmarks of code
that loads a model (a classifier or sentence encoder, a translator, a causal LM) without a
model hub. Their predictions mean nothing; their files, tokenizers and shapes are real.

Each builder takes the folder to write and the words or sentences its tokenizer must know,
and returns the folder the model loads from. torch and transformers are imported on call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The causal LM's tokenizer is trained on these unless other sentences are given.
LM_SENTENCES = (
    "a warm and funny film about a family",
    "the plot is dull and the acting is flat",
    "an honest , moving story told with care",
    "i could not wait for this bore to end",
    "paraphrase the sentence : rewrite it with other words",
    "sure ! here is a paraphrase of the sentence",
)


def tiny_bert(
    path: Path,
    words: Sequence[str],
    *,
    hidden: int = 32,
    layers: int = 2,
    positions: int = 64,
    classifier: bool = True,
) -> Path:
    """A seeded BERT with a word-level vocabulary of `words` (lower-cased), two attention
    heads; with a sequence-classification head, or bare (what sentence-transformers loads
    with mean pooling) when `classifier` is false."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys([*BERT_SPECIALS, *words]))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=positions,
    )
    # Seeded: tests that train it must not pass or fail with the initialisation's luck.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = (BertForSequenceClassification if classifier else BertModel)(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_marian(
    root: Path,
    sentences: Sequence[str],
    *,
    vocab_size: int = 40,
    d_model: int = 32,
    layers: int = 1,
    positions: int = 64,
) -> Path:
    """A Marian translation model (seeded) whose sentencepiece tokenizer is trained on
    `sentences`; the work files go in `root`, the model in `root / "model"`."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.txt").write_text("\n".join(sentences) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(root / "corpus.txt"),
        model_prefix=str(root / "sp"),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        bos_id=-1,
        eos_id=-1,
        unk_id=1,
        pad_id=-1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=str(root / "sp.model"))
    pieces = ["</s>", "<unk>"] + [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    pieces = [p for p in dict.fromkeys(pieces) if p != "<pad>"] + ["<pad>"]  # Marian: pad last
    vocab = {p: i for i, p in enumerate(pieces)}
    out = root / "model"
    out.mkdir()
    (out / "vocab.json").write_text(json.dumps(vocab))
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes((root / "sp.model").read_bytes())
    MarianTokenizer(
        str(out / "source.spm"), str(out / "target.spm"), str(out / "vocab.json")
    ).save_pretrained(out)
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=2 * layers,
        decoder_attention_heads=2 * layers,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=positions,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=vocab["</s>"],
    )
    MarianMTModel(config).save_pretrained(out)
    return out


def tiny_llama(
    root: Path, sentences: Sequence[str] = LM_SENTENCES, chat_template: str | None = None
) -> Path:
    """A seeded one-layer Llama (hidden size 32) with a word-level tokenizer trained on
    `sentences`, saved to `root`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        list(sentences),
        trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>", "<s>", "</s>"]),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    if chat_template:
        tok.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=raw.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        # Spread-out logits: greedy choices are not near-ties that float noise could flip.
        initializer_range=0.5,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    root.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(root)
    tok.save_pretrained(root)
    return root
