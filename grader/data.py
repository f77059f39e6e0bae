"""MNIST and Fashion-MNIST, loaded offline and checked.

`load(name)` returns a `Dataset` with the lecture's splits: the first 55,000
training images for training, the last 5,000 for validation, and the 10,000
test images. Images are uint8 of shape (N, 28, 28), labels uint8 of shape (N,).

Where the files come from:

- MNIST: ``$KERAS_HOME/datasets/mnist.npz`` (``~/.keras`` by default), the file
  ``keras.datasets.mnist.load_data()`` downloads; its sha256 is checked.
  `fetch_mnist()` downloads it through Keras where the network allows.
- Fashion-MNIST: the IDX files of Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist``) or Keras's cache folder
  (``$KERAS_HOME/datasets/fashion-mnist``); parsed here, with the header, the
  sizes and a sha256 of the decompressed contents checked.

A file that is missing, truncated or damaged raises `DatasetError`, whose
message names the file, what was wrong, and how to get a good copy.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST = "mnist"
FASHION_MNIST = "fashion_mnist"
NAMES = (MNIST, FASHION_MNIST)

VALIDATION_SIZE = 5_000  # the lecture keeps the last 5,000 training images for validation
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# The file `keras.datasets.mnist.load_data()` downloads.
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# sha256 of each file's decompressed bytes, so any gzip recompression (Debian's,
# Keras's) of the same data is accepted, and (number of items) it must hold.
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 60_000),
    "train-labels-idx1-ubyte.gz": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60_000),
    "t10k-images-idx3-ubyte.gz": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 10_000),
    "t10k-labels-idx1-ubyte.gz": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10_000),
}
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension

HOW_TO_GET_FASHION = (
    "install Debian's package with `sudo apt-get install --reinstall dataset-fashion-mnist` "
    "(it puts the files in /usr/share/datasets/fashion-mnist)"
)
HOW_TO_GET_MNIST = (
    "delete it and run `grader data fetch` where the network allows, or copy a good "
    "mnist.npz there (sha256 " + MNIST_SHA256 + ")"
)


class DatasetError(Exception):
    """A dataset file is missing, truncated or damaged; the message says how to fix it."""


@dataclass(frozen=True)
class Dataset:
    """The lecture's three splits of one dataset.

    Attributes:
        name: "mnist" or "fashion_mnist".
        source: the folder or file the data was read from.
        x_train: uint8 images of shape (55000, 28, 28).
        y_train: uint8 labels of shape (55000,), values 0..9.
        x_validation: uint8 images of shape (5000, 28, 28), the last 5,000 training images.
        y_validation: uint8 labels of shape (5000,).
        x_test: uint8 images of shape (10000, 28, 28).
        y_test: uint8 labels of shape (10000,).
    """

    name: str
    source: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def keras_home() -> Path:
    """Keras's cache folder: ``$KERAS_HOME``, else ``~/.keras``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def mnist_path() -> Path:
    return keras_home() / "datasets" / "mnist.npz"


def fashion_dirs() -> list[Path]:
    """Folders searched for the Fashion-MNIST IDX files, in order."""
    return [DEBIAN_FASHION_DIR, keras_home() / "datasets" / "fashion-mnist"]


def find_fashion_dir() -> Path | None:
    """The first folder that holds all four Fashion-MNIST files, or None."""
    for folder in fashion_dirs():
        if all((folder / name).is_file() for name in FASHION_FILES):
            return folder
    return None


def available() -> list[str]:
    """Names of the datasets whose files are present (not yet verified)."""
    names = []
    if mnist_path().is_file():
        names.append(MNIST)
    if find_fashion_dir() is not None:
        names.append(FASHION_MNIST)
    return names


def default_name() -> str:
    """The dataset used when none is named.

    ``$GRADER_DATASET`` if set; else MNIST if it is cached; else Fashion-MNIST if
    it is installed; else MNIST if it can be fetched now.

    Raises:
        DatasetError: if ``$GRADER_DATASET`` names no dataset, or none is present
            and MNIST cannot be fetched.
    """
    chosen = os.environ.get("GRADER_DATASET")
    if chosen:
        _check_name(chosen, "GRADER_DATASET")
        return chosen
    present = available()
    if present:
        return present[0]
    try:
        fetch_mnist()
    except DatasetError as error:
        raise DatasetError(
            "No dataset is available. Looked for MNIST at "
            f"{mnist_path()} and for Fashion-MNIST in "
            f"{', '.join(str(d) for d in fashion_dirs())}; fetching MNIST failed ({error}). "
            f"To get Fashion-MNIST offline, {HOW_TO_GET_FASHION}."
        ) from None
    return MNIST


def load(name: str | None = None) -> Dataset:
    """Loads a dataset, checked, split as in the lecture.

    Args:
        name: "mnist" or "fashion_mnist"; None picks `default_name()`.

    Returns:
        The `Dataset`, with uint8 images (N, 28, 28) and uint8 labels (N,).

    Raises:
        DatasetError: a file is missing or damaged; the message says how to fix it.
    """
    name = default_name() if name is None else name
    _check_name(name, "name")
    if name == MNIST:
        source = mnist_path()
        x_train, y_train, x_test, y_test = _load_mnist_npz(source)
    else:
        folder = find_fashion_dir()
        if folder is None:
            raise DatasetError(
                "Fashion-MNIST is not installed: looked for "
                f"{', '.join(FASHION_FILES)} in {' and '.join(str(d) for d in fashion_dirs())}. "
                f"To get it, {HOW_TO_GET_FASHION}."
            )
        source = folder
        x_train = read_idx(folder / "train-images-idx3-ubyte.gz")
        y_train = read_idx(folder / "train-labels-idx1-ubyte.gz")
        x_test = read_idx(folder / "t10k-images-idx3-ubyte.gz")
        y_test = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    split = len(x_train) - VALIDATION_SIZE
    return Dataset(
        name=name,
        source=source,
        x_train=x_train[:split],
        y_train=y_train[:split],
        x_validation=x_train[split:],
        y_validation=y_train[split:],
        x_test=x_test,
        y_test=y_test,
    )


def read_idx(path: Path, *, verify_hash: bool = True) -> np.ndarray:
    """Reads one gzip-compressed IDX file of Fashion-MNIST.

    Args:
        path: an ``*-images-idx3-ubyte.gz`` or ``*-labels-idx1-ubyte.gz`` file.
        verify_hash: compare the decompressed bytes with the known sha256.

    Returns:
        uint8 images of shape (N, 28, 28), or uint8 labels of shape (N,).

    Raises:
        DatasetError: missing file, bad gzip stream, wrong header, wrong size,
            labels out of range, or a hash that does not match.
    """
    path = Path(path)
    expected_hash, expected_count = FASHION_FILES.get(path.name, (None, None))
    if not path.is_file():
        raise DatasetError(f"{path}: the file does not exist. To get it, {HOW_TO_GET_FASHION}.")
    try:
        with gzip.open(path, "rb") as stream:
            raw = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        # gzip raises BadGzipFile (an OSError) on a bad header, EOFError when truncated.
        raise _damaged(path, f"it is not a complete gzip file ({error})") from None

    is_images = "idx3" in path.name
    magic = IDX_IMAGES_MAGIC if is_images else IDX_LABELS_MAGIC
    header_size = 16 if is_images else 8
    if len(raw) < header_size:
        raise _damaged(path, f"it holds {len(raw)} bytes, fewer than an IDX header")
    found_magic, count = struct.unpack(">II", raw[:8])
    if found_magic != magic:
        raise _damaged(path, f"wrong magic number 0x{found_magic:08x}, expected 0x{magic:08x}")
    shape: tuple[int, ...] = (count,)
    if is_images:
        rows, cols = struct.unpack(">II", raw[8:16])
        if (rows, cols) != IMAGE_SHAPE:
            raise _damaged(path, f"images are {rows}x{cols}, expected 28x28")
        shape = (count, rows, cols)
    if expected_count is not None and count != expected_count:
        raise _damaged(path, f"the header says {count} items, expected {expected_count}")
    payload = len(raw) - header_size
    if payload != int(np.prod(shape)):
        raise _damaged(
            path, f"it holds {payload} bytes of data, expected {int(np.prod(shape))} for {shape}"
        )
    if verify_hash and expected_hash is not None:
        found_hash = hashlib.sha256(raw).hexdigest()
        if found_hash != expected_hash:
            raise _damaged(path, f"its contents have sha256 {found_hash}, expected {expected_hash}")
    array = np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)
    if not is_images and array.max(initial=0) >= NUM_CLASSES:
        raise _damaged(path, f"it holds label {int(array.max())}, expected labels 0..9")
    return array.copy()  # a writable array that does not pin the decompressed buffer


def fetch_mnist(origin: str = MNIST_URL) -> Path:
    """Downloads mnist.npz into Keras's cache (`mnist_path`) and checks it.

    Keras 3's ``get_file`` takes a file name, not a path (``fname="/x/mnist.npz"`` is
    refused), so the name and the folder are passed apart. Without Keras (a numpy-only
    install) the standard library downloads it. Either way the sha256 is checked before
    the file is in place, so a damaged download never replaces a good file.

    Args:
        origin: Where to download from: Keras's URL, a mirror, or a ``file://`` URL of a
            copy (a classroom without access to storage.googleapis.com).

    Returns:
        The path of the checked file.

    Raises:
        DatasetError: the download failed (no network, a bad origin) or gave a damaged file.
    """
    target = mnist_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mnist-") as scratch:
            got = _download(origin, Path(scratch))
            digest = hashlib.sha256(got.read_bytes()).hexdigest()
            if digest != MNIST_SHA256:
                raise DatasetError(
                    f"the file from {origin} is not Keras's mnist.npz: sha256 {digest}, "
                    f"expected {MNIST_SHA256}; {target} was left as it was. Give "
                    "--origin a copy of the genuine file.")
            os.replace(got, target)  # same folder: the good file appears at once
    except OSError as error:
        raise DatasetError(f"could not write {target}: {error}. Set KERAS_HOME to a "
                           "folder you can write, or free some space.") from None
    _load_mnist_npz(target)
    return target


def _download(origin: str, folder: Path) -> Path:
    """Downloads `origin` into `folder` as mnist.npz (Keras's `get_file` when installed)."""
    try:
        from keras.utils import get_file
    except ImportError:
        get_file = None
    try:
        if get_file is None:
            target = folder / "mnist.npz"
            urllib.request.urlretrieve(origin, target)  # noqa: S310 - http(s) or file://
            return target
        # Keras 3: fname is a name; the folder is cache_dir/cache_subdir. No file_hash:
        # the hash is checked above, with a message that says what to do.
        return Path(get_file(fname="mnist.npz", origin=origin, cache_dir=str(folder),
                             cache_subdir="download"))
    except Exception as error:  # noqa: BLE001 - keras and urllib wrap network errors differently
        raise DatasetError(
            f"could not download MNIST from {origin}: {error}. Run `grader data fetch` "
            "where the network allows, give a mirror or a copy with `grader data fetch "
            "--origin URL` (file:///path/to/mnist.npz works), or use Fashion-MNIST offline "
            f"(GRADER_DATASET=fashion_mnist; {HOW_TO_GET_FASHION}).") from None


def _load_mnist_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reads and checks Keras's mnist.npz: (x_train, y_train, x_test, y_test)."""
    if not path.is_file():
        raise DatasetError(
            f"{path}: MNIST is not there. Run `grader data fetch` where the network "
            f"allows, or use Fashion-MNIST offline (GRADER_DATASET=fashion_mnist; "
            f"{HOW_TO_GET_FASHION})."
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MNIST_SHA256:
        raise DatasetError(
            f"{path}: the file is damaged: sha256 {digest}, expected {MNIST_SHA256}. "
            f"To get a good copy, {HOW_TO_GET_MNIST}."
        )
    with np.load(path, allow_pickle=False) as archive:
        arrays = tuple(archive[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    return arrays  # type: ignore[return-value]


def _damaged(path: Path, what: str) -> DatasetError:
    how = HOW_TO_GET_MNIST if path.name.endswith(".npz") else HOW_TO_GET_FASHION
    return DatasetError(f"{path}: the file is damaged: {what}. To get a good copy, {how}.")


def _check_name(name: str, where: str) -> None:
    if name not in NAMES:
        raise DatasetError(
            f"Unknown dataset {where}={name!r}; expected one of: {', '.join(NAMES)}."
        )
