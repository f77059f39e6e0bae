"""Accuracy splits private to each grading run.

A student's code never sees the images its accuracy is measured on in a known order:
each accuracy test takes a subset of the test split, in an order drawn from a seed
derived from a secret the runtime cannot read (the grader's file system is out of the
sandbox's view) and the submission's own key (its content hash and the test's name).
The same submission therefore gets the same split, and the same grade, every time;
labels memorised from the public dataset, in the dataset's order, do not help.

The secret is ``$GRADER_SPLIT_SECRET`` when set (give every node of a Ray cluster the
same one), else a random 32 bytes kept in ``$XDG_DATA_HOME/nn-grader/split-secret``
(``~/.local/share/...``), created on first use with mode 0600.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SECRET_ENV = "GRADER_SPLIT_SECRET"


@dataclass(frozen=True)
class PrivateSplit:
    """A subset of a labelled split in a secret order.

    Attributes:
        images: uint8 (n, 28, 28), in the secret order.
        labels: int64 (n,), aligned with ``images``; never sent to a runtime.
        indices: int64 (n,), the positions in the full split (for the report only).
    """

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def secret_path() -> Path:
    """Where the machine's split secret is kept when ``$GRADER_SPLIT_SECRET`` is unset."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"),
                                                           ".local", "share")
    return Path(base, "nn-grader", "split-secret")


def split_secret() -> bytes:
    """The grader's secret (see the module docstring); created on first use."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env.encode("utf-8")
    path = secret_path()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_bytes(32)
    try:  # O_EXCL: two workers starting at once agree on the first one written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(token)
    return token


def split_seed(key: str) -> int:
    """A 64-bit seed from the secret and ``key`` (e.g. ``"<content hash>:test_accuracy"``)."""
    digest = hmac.new(split_secret(), key.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


def private_split(images: np.ndarray, labels: np.ndarray, size: int, *,
                  key: str) -> PrivateSplit:
    """``size`` images of a split in the secret order for ``key``.

    Args:
        images: The full split, (N, 28, 28).
        labels: Its labels, (N,).
        size: How many to take (at most N).
        key: What makes this run's order: the submission's content hash and the test's
            name. Calibration passes one key per seed.

    Returns:
        The private split.
    """
    total = len(images)
    if len(labels) != total:
        raise ValueError(f"{total} images but {len(labels)} labels")
    size = min(int(size), total)
    order = np.random.default_rng(split_seed(key)).permutation(total)[:size]
    return PrivateSplit(images=np.asarray(images)[order],
                        labels=np.asarray(labels)[order].astype(np.int64),
                        indices=order.astype(np.int64))
