"""The dataset loader on the real Fashion-MNIST files and on damaged copies of them."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader import data

REAL_DIR = data.DEBIAN_FASHION_DIR
LABELS = "t10k-labels-idx1-ubyte.gz"
IMAGES = "t10k-images-idx3-ubyte.gz"

pytestmark = pytest.mark.skipif(
    data.find_fashion_dir() is None,
    reason="Fashion-MNIST is not installed; `make test` installs dataset-fashion-mnist",
)


@pytest.fixture(scope="module")
def fashion() -> data.Dataset:
    return data.load(data.FASHION_MNIST)


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras cache, so no real ~/.keras changes what is found."""
    home = tmp_path / "keras"
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv("GRADER_DATASET", raising=False)
    return home


def test_fashion_splits_have_the_lectures_shapes(fashion):
    assert fashion.name == "fashion_mnist"
    assert fashion.x_train.shape == (55_000, 28, 28)
    assert fashion.x_validation.shape == (5_000, 28, 28)
    assert fashion.x_test.shape == (10_000, 28, 28)
    assert fashion.y_train.shape == (55_000,)
    assert fashion.y_validation.shape == (5_000,)
    assert fashion.y_test.shape == (10_000,)
    for array in (fashion.x_train, fashion.y_train, fashion.x_test, fashion.y_test):
        assert array.dtype == np.uint8


def test_validation_is_the_last_5000_training_images(fashion):
    all_train = data.read_idx(fashion.source / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(fashion.x_validation, all_train[-5000:])
    np.testing.assert_array_equal(fashion.x_train, all_train[:-5000])


def test_labels_cover_ten_balanced_classes(fashion):
    counts = np.bincount(fashion.y_test, minlength=10)
    assert counts.tolist() == [1000] * 10  # Fashion-MNIST's test set is balanced
    assert 0 < fashion.x_test.mean() < 255


def test_default_is_fashion_when_mnist_is_not_cached(keras_home):
    assert data.default_name() == "fashion_mnist"


def test_grader_dataset_overrides_the_default(keras_home, monkeypatch):
    monkeypatch.setenv("GRADER_DATASET", "mnist")
    assert data.default_name() == "mnist"


def test_unknown_dataset_name_lists_the_known_ones(keras_home, monkeypatch):
    monkeypatch.setenv("GRADER_DATASET", "cifar10")
    with pytest.raises(data.DatasetError, match=r"GRADER_DATASET='cifar10'.*mnist, fashion_mnist"):
        data.default_name()


def test_missing_mnist_says_where_it_looked_and_what_to_do(keras_home):
    with pytest.raises(data.DatasetError) as caught:
        data.load("mnist")
    message = str(caught.value)
    assert str(keras_home / "datasets" / "mnist.npz") in message
    assert "`grader data fetch`" in message
    _assert_commands_parse(message)


def _assert_commands_parse(message: str) -> None:
    """Every `grader ...` command a message suggests is one the CLI accepts."""
    from grader.cli import build_parser

    commands = re.findall(r"`grader ([^`]*)`", message)
    assert commands, message
    for command in commands:
        build_parser().parse_args(command.replace("URL", "file:///x").split())


def test_fashion_is_found_in_the_keras_cache_folder(keras_home, monkeypatch):
    cache = keras_home / "datasets" / "fashion-mnist"
    shutil.copytree(REAL_DIR, cache)
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", Path("/nonexistent"))
    assert data.find_fashion_dir() == cache
    assert data.load("fashion_mnist").x_test.shape == (10_000, 28, 28)


def test_missing_fashion_names_the_package(keras_home, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", Path("/nonexistent"))
    with pytest.raises(data.DatasetError,
                       match="apt-get install --reinstall dataset-fashion-mnist"):
        data.load("fashion_mnist")


# --- damaged copies -------------------------------------------------------------------------


def _raw(name: str) -> bytes:
    with gzip.open(REAL_DIR / name, "rb") as stream:
        return stream.read()


def _write(folder: Path, name: str, payload: bytes, *, compress: bool = True) -> Path:
    path = folder / name
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def _damages(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Damaged copies of the real test files, each with what the error must say."""
    labels, images = _raw(LABELS), _raw(IMAGES)
    compressed = (REAL_DIR / IMAGES).read_bytes()
    cases = {
        "truncated gzip": (compressed[: len(compressed) // 2], False, IMAGES,
                           "not a complete gzip"),
        "not gzip at all": (b"<html>404</html>", False, LABELS, "not a complete gzip"),
        "wrong magic": (struct.pack(">II", 0x0803, 10_000) + labels[8:], True, LABELS,
                        "wrong magic number"),
        "wrong count": (struct.pack(">II", 0x0801, 9_999) + labels[8:], True, LABELS,
                        "expected 10000"),
        "short payload": (images[:-784], True, IMAGES, "bytes of data"),
        "flipped byte": (labels[:100] + bytes([(labels[100] + 1) % 10]) + labels[101:], True,
                         LABELS, "sha256"),
        "bad label": (labels[:-1] + bytes([42]), True, LABELS, "label"),
    }
    made = {}
    for case, (payload, compress, name, expected) in cases.items():
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        made[case] = (_write(folder, name, payload, compress=compress), expected)
    return made


@pytest.mark.parametrize("case", ["truncated gzip", "not gzip at all", "wrong magic", "wrong count",
                                  "short payload", "flipped byte", "bad label"])
def test_damaged_file_gets_one_clear_error(tmp_path, case):
    path, expected = _damages(tmp_path)[case]
    verify = case != "bad label"  # a label out of range is caught even without the hash
    with pytest.raises(data.DatasetError) as caught:
        data.read_idx(path, verify_hash=verify)
    message = str(caught.value)
    assert str(path) in message
    assert expected in message
    assert "dataset-fashion-mnist" in message  # how to get a good copy


def test_damaged_file_in_the_loaded_folder_stops_load(keras_home, monkeypatch, tmp_path):
    folder = keras_home / "datasets" / "fashion-mnist"
    shutil.copytree(REAL_DIR, folder)
    labels = _raw(LABELS)
    _write(folder, LABELS, labels[:-1] + bytes([(labels[-1] + 1) % 10]))
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", Path("/nonexistent"))
    with pytest.raises(data.DatasetError, match="sha256"):
        data.load("fashion_mnist")


def test_mnist_npz_with_wrong_hash_is_refused(keras_home):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=np.zeros((6, 28, 28), np.uint8), y_train=np.zeros(6, np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    assert data.default_name() == "mnist"  # a cached MNIST is preferred...
    with pytest.raises(data.DatasetError, match=r"damaged: sha256 .* expected 731c5ac6"):
        data.load("mnist")  # ...but only a genuine one loads


def test_mnist_npz_is_read_when_its_hash_matches(keras_home, monkeypatch):
    path = keras_home / "datasets" / "mnist.npz"
    path.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (5_010, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 5_010, dtype=np.uint8),
             x_test=np.zeros((3, 28, 28), np.uint8), y_test=np.zeros(3, np.uint8))
    monkeypatch.setattr(data, "MNIST_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    dataset = data.load("mnist")
    assert dataset.x_train.shape == (10, 28, 28)
    assert dataset.x_validation.shape == (5_000, 28, 28)


def _grader(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_data_check_and_bad_dataset(keras_home):
    import os

    env = {**os.environ, "GRADER_LANG": "en"}  # the lecture's course speaks zh_CN
    ok = _grader("data", "check", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "dataset ok: fashion_mnist" in ok.stdout
    bad = _grader("data", "check", env={**env, "GRADER_DATASET": "cifar10"})
    assert bad.returncode == 2
    assert "Unknown dataset GRADER_DATASET='cifar10'" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- grader data fetch: Keras 3's get_file, a local origin, no network ----------------------

@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """A small mnist.npz in a local folder, taken as genuine (its sha256 is patched in)."""
    path = tmp_path / "mirror" / "mnist.npz"
    path.parent.mkdir()
    rng = np.random.default_rng(1)
    np.savez(path, x_train=rng.integers(0, 256, (5_004, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 5_004, dtype=np.uint8),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2, np.uint8))
    monkeypatch.setattr(data, "MNIST_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    return path


def test_fetch_goes_through_keras_get_file_with_a_name_not_a_path(keras_home, mirror,
                                                                  monkeypatch):
    keras_utils = pytest.importorskip("keras.utils")
    calls = []
    real_get_file = keras_utils.get_file

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_get_file(*args, **kwargs)  # Keras's own download of the file:// origin

    monkeypatch.setattr(keras_utils, "get_file", spy)
    path = data.fetch_mnist(mirror.as_uri())
    assert path == keras_home / "datasets" / "mnist.npz"
    assert path.read_bytes() == mirror.read_bytes()
    [call] = calls
    assert "/" not in call["fname"] and "\\" not in call["fname"]  # Keras 3 refuses paths
    assert data.load("mnist").x_train.shape == (4, 28, 28)
    assert [p.name for p in path.parent.iterdir()] == ["mnist.npz"]  # no download litter


def test_fetch_without_keras_downloads_with_the_standard_library(keras_home, mirror,
                                                                 monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # a numpy-only install
    monkeypatch.setitem(sys.modules, "keras.utils", None)
    path = data.fetch_mnist(mirror.as_uri())
    assert path.read_bytes() == mirror.read_bytes()


def test_a_damaged_download_never_replaces_the_cached_file(keras_home, mirror, tmp_path):
    data.fetch_mnist(mirror.as_uri())
    good = data.mnist_path().read_bytes()
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(mirror.read_bytes()[:-100])
    with pytest.raises(data.DatasetError) as caught:
        data.fetch_mnist(damaged.as_uri())
    message = str(caught.value)
    assert "is not Keras's mnist.npz: sha256" in message and data.MNIST_SHA256 in message
    assert data.mnist_path().read_bytes() == good


def test_an_unreachable_origin_says_what_to_do(keras_home, tmp_path):
    missing = (tmp_path / "nowhere" / "mnist.npz").as_uri()
    with pytest.raises(data.DatasetError) as caught:
        data.fetch_mnist(missing)
    message = str(caught.value)
    assert f"could not download MNIST from {missing}" in message
    assert "--origin" in message and "GRADER_DATASET=fashion_mnist" in message
    _assert_commands_parse(message)
    assert not data.mnist_path().exists()


def test_cli_data_fetch_from_a_local_copy(keras_home, mirror, capsys):
    from grader import cli

    assert cli.main(["--lang", "en", "data", "fetch", "--origin", mirror.as_uri()]) == 0
    assert capsys.readouterr().out.endswith(f"MNIST is at {data.mnist_path()}\n")
    assert cli.main(["data", "fetch", "--dataset", "fashion_mnist"]) == 2
    assert "dataset-fashion-mnist" in capsys.readouterr().err
    assert cli.main(["data", "check", "--origin", mirror.as_uri()]) == 2
    assert "--origin is for `grader data fetch`" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # the old hint's argument stays an error
        cli.main(["data", "fetch", "mnist"])
    assert stop.value.code == 2
