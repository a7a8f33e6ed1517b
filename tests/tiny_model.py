"""A tiny randomly initialised Llama with a word-level tokenizer and a chat template, saved to a
folder: a local model built from a config, with no download (for the trl and transformers tests).
Needs the ``local`` extra; importing this module without it raises ImportError."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from conftest import read_jsonl
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


def tiny_model(dataset: Path, folder: Path) -> Path:
    """Save a random tiny Llama and a word-level tokenizer (with a chat template) to ``folder``,
    its vocabulary the words of a chat dataset."""
    return tiny_model_from_texts(
        [m["content"] for line in read_jsonl(dataset) for m in line["messages"]], folder
    )


def tiny_model_from_texts(texts: Iterable[str], folder: Path) -> Path:
    """Save a random tiny Llama and a word-level tokenizer of the words in ``texts`` to ``folder``."""
    word_level = Tokenizer(models.WordLevel(unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    word_level.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=word_level,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|end|>",
        additional_special_tokens=SPECIALS[3:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        # Wide enough weights that a frozen head behind RMSNorm can still express a confident
        # distribution (at 0.02 a random tiny head caps every logit near 1).
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
