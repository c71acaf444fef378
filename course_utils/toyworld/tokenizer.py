"""A CLIP tokenizer for a small vocabulary, built from scratch (no download).

CLIP's tokenizer is byte-level BPE: a word is split into characters (the last one marked with
'</w>') and merged pair by pair, lowest merge rank first. Here the merges are learnt from a word
list (ToyWorld's words), so every one of those words becomes a single token, while any other
text still tokenizes (into characters). The files are the standard `vocab.json` + `merges.txt`,
so `transformers.CLIPTokenizer.from_pretrained` reads them like SD's own tokenizer.
"""
from __future__ import annotations
import json
from collections import Counter
from pathlib import Path

__all__ = ["learn_merges", "write_clip_tokenizer"]

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    "The 256 printable characters CLIP uses for bytes (same table as GPT-2/CLIP)."
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    return [chr(c) for c in cs]


def learn_merges(words) -> list[tuple[str, str]]:
    "BPE merges that turn each word of `words` into one symbol (most frequent pair first)."
    seqs = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in sorted(set(words))}
    merges = []
    while True:
        pairs = Counter(p for s in seqs.values() for p in zip(s, s[1:]))
        if not pairs: return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, s in seqs.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best: out.append(s[i] + s[i + 1]); i += 2
                else: out.append(s[i]); i += 1
            seqs[w] = tuple(out)


def write_clip_tokenizer(words, path, model_max_length: int = 32) -> Path:
    "Write a CLIPTokenizer folder (vocab.json, merges.txt, configs) whose merges cover `words`."
    path = Path(path); path.mkdir(parents=True, exist_ok=True)
    base = _bytes_to_unicode()
    merges = learn_merges(words)
    vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [BOS, EOS]
    (path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (path / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length, "do_lower_case": True,
         "add_prefix_space": False, "errors": "replace", **special}, indent=2))
    return path
