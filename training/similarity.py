"""Near-duplicate detection for training data: MinHash over character 5-grams with
locality-sensitive banding, so that finding the similar pairs among n examples costs about
O(n) rather than comparing all n² pairs. Every candidate pair is confirmed with its exact
Jaccard similarity, so banding can miss a pair only near the threshold, never invent one.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Sequence

_WORD = re.compile(r"\w+")
_SHINGLE = 5
_PRIME = (1 << 31) - 1  # a*x + b stays below 2**62: no uint64 overflow
_PERMUTATIONS = 64
_BANDS = 16  # 16 bands of 4 rows: pairs from a Jaccard of about 0.5 up become candidates


def normalise(text: str) -> str:
    """Lower-cased words only: "Hi, there!" and "hi there" are the same text."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str) -> frozenset[str]:
    """Character 5-grams of the normalised text: robust to a word added or changed in a
    short question, where word n-grams change almost entirely."""
    text = normalise(text)
    return frozenset(text[i : i + _SHINGLE] for i in range(max(1, len(text) - _SHINGLE + 1)))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def similar_pairs(texts: Sequence[str], threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every pair i < j of texts whose Jaccard similarity (of
    their shingles) is at least `threshold`."""
    import numpy as np

    sets = [shingles(text) for text in texts]
    rng = np.random.default_rng(0)
    a = rng.integers(1, _PRIME, _PERMUTATIONS, dtype=np.uint64)
    b = rng.integers(0, _PRIME, _PERMUTATIONS, dtype=np.uint64)
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    rows = _PERMUTATIONS // _BANDS
    for index, items in enumerate(sets):
        hashed = np.array([zlib.crc32(item.encode()) for item in items], dtype=np.uint64)
        signature = ((np.outer(a, hashed) + b[:, None]) % _PRIME).min(axis=1)
        for band in range(_BANDS):
            buckets[(band, signature[band * rows : (band + 1) * rows].tobytes())].append(index)
    candidates = {
        (members[i], members[j])
        for members in buckets.values()
        for i in range(len(members))
        for j in range(i + 1, len(members))
    }
    pairs = []
    for i, j in sorted(candidates):
        similarity = jaccard(sets[i], sets[j])
        if similarity >= threshold:
            pairs.append((i, j, similarity))
    return pairs
