"""The cleanlab-named library API beyond the call table: the optional extras (pandas,
matplotlib), the probability-sum warning, ValueError errors, majority downsampling worked by
hand, and memory-mapped input."""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from cleanlab.segmentation import filter as ref_filter
from cleanlab.segmentation import rank as ref_rank
from cleanlab.segmentation import summary as ref_summary
from numpy.typing import NDArray

import segaudit
from segaudit import api
from segaudit.compat.cleanlab import filter, rank, summary
from segaudit.config.classes import ClassesConfig, generated_palette
from segaudit.core.pixel import digest_image
from segaudit.errors import (
    ConfigError,
    DatasetError,
    ImageError,
    OptionError,
    ProbabilityError,
    ProbabilitySumWarning,
    SegauditError,
)
from segaudit.output.overlay import OverlayWriter

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the non-interactive backend

RNG = np.random.default_rng(151)
L = RNG.integers(0, 3, (4, 8, 8))
P = RNG.random((4, 3, 8, 8))
PN = P / P.sum(axis=1, keepdims=True)
M = RNG.random(L.shape) < 0.3


def no_files(index: int, image_id: str) -> Path:
    raise AssertionError("these tests only render")


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the reference without its progress bars and prints."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


# ------------------------------------------------------------------------- optional extras


def test_frame_needs_pandas_and_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = api.common_label_issues(M, L, PN)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match=r"pip install 'segaudit\[pandas\]'"):
        summary.common_label_issues(M, L, PN)
    with pytest.raises(ImportError, match=r"segaudit\[pandas\]"):
        api.common_label_issues(M, L, PN, as_frame=True)
    assert api.common_label_issues(M, L, PN) == pairs  # the plain pairs need no pandas
    assert pairs


def test_display_needs_matplotlib_and_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'segaudit\[plot\]'"):
        summary.display_issues(M, labels=L, pred_probs=PN)


def test_frame_is_the_pairs_with_cleanlab_columns() -> None:
    pairs = api.common_label_issues(M, L, PN, top=None)
    frame = api.common_label_issues(M, L, PN, as_frame=True, class_names=["a", "b", "c"])
    assert list(frame.columns) == ["given_label", "predicted_label", "num_pixel_issues"]
    names = "abc"
    assert frame.values.tolist() == [[names[p.given], names[p.predicted], p.pixels] for p in pairs]


def test_verbose_prints_one_line_per_row(capsys: pytest.CaptureFixture[str]) -> None:
    frame = summary.common_label_issues(M, L, PN, top=3, class_names=["sky", "road", "car"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(frame) == 3
    for line, (given, predicted, pixels) in zip(lines, frame.values.tolist(), strict=True):
        assert line == (
            f"Class {given!r} is potentially mislabeled as class {predicted!r} "
            f"on {pixels} pixels in the dataset"
        )
    summary.common_label_issues(M, L, PN, verbose=False)
    api.common_label_issues(M, L, PN)  # the library default prints nothing
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------- display_issues


class Shown:
    """Records what each plt.show() call had on screen, then closes it."""

    def __init__(self) -> None:
        self.figures: list[tuple[list[str], list[NDArray[Any]], dict[str, Any]]] = []

    def __call__(self, **kwargs: Any) -> None:
        for number in plt.get_fignums():
            figure = plt.figure(number)
            titles = [axes.get_title() for axes in figure.axes]
            pictures = [np.asarray(a.images[0].get_array()) for a in figure.axes if a.images]
            self.figures.append((titles, pictures, kwargs))
        plt.close("all")


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Shown:
    plt.close("all")
    recorder = Shown()
    monkeypatch.setattr(plt, "show", recorder)
    return recorder


def test_display_shows_most_flagged_images_first(shown: Shown) -> None:
    issues = np.zeros((4, 8, 8), bool)
    for image, count in enumerate([1, 5, 3, 5]):
        issues[image].flat[:count] = True
    summary.display_issues(issues, top=3, block=False)
    titles = [titles[-1] for titles, _, _ in shown.figures]
    assert titles == [
        "Image 1: 5 flagged pixels",
        "Image 3: 5 flagged pixels",
        "Image 2: 3 flagged pixels",
    ]
    assert all(kwargs == {"block": False} for _, _, kwargs in shown.figures)
    # Only the mask: flagged pixels in the issue colour on grey.
    picture = shown.figures[0][1][-1]
    color = OverlayWriter(no_files, ClassesConfig(("0",), generated_palette(1)), ()).issue_color
    np.testing.assert_array_equal(picture[issues[1]], np.tile(color, (5, 1)))
    assert (picture[~issues[1]] == 64).all()


def test_display_draws_segaudit_overlay(shown: Shown) -> None:
    issues = filter.find_label_issues(L, PN)
    names = ["sky", "road", "car"]
    summary.display_issues(issues, labels=L, pred_probs=PN, class_names=names, top=2)
    order = np.argsort(-issues.sum(axis=(1, 2)), kind="stable")[:2]
    assert len(shown.figures) == 2
    classes = ClassesConfig(tuple(names), generated_palette(3), frozenset({255}))
    writer = OverlayWriter(no_files, classes, ())
    for index, (titles, pictures, _) in zip(order, shown.figures, strict=True):
        digest = digest_image(str(index), L[index], PN[index], {255}, check_sums=False)
        sheet = np.asarray(writer.render(str(index), digest, issues[index]))
        assert titles == [f"Image {index}: {int(issues[index].sum())} flagged pixels"]
        np.testing.assert_array_equal(pictures[0], sheet)


def test_display_pictures_differ_from_cleanlab_only_by_the_legend_figure(shown: Shown) -> None:
    """cleanlab shows an extra legend figure for class_names; segaudit's legend is in each
    picture. Otherwise the same number of figures, in the same order."""
    issues = quiet(ref_filter.find_label_issues, L, PN, verbose=False)
    for options in ({"top": 3}, {"top": -1}, {"top": 100}, {"labels": L}):
        summary.display_issues(issues, **options)
        ours = len(shown.figures)
        shown.figures.clear()
        quiet(ref_summary.display_issues, issues, **options)
        assert ours == len(shown.figures), options
        shown.figures.clear()
    summary.display_issues(issues, labels=L, pred_probs=PN, class_names=["a", "b", "c"], top=2)
    ours = len(shown.figures)
    shown.figures.clear()
    names = ["a", "b", "c"]
    quiet(ref_summary.display_issues, issues, labels=L, pred_probs=PN, class_names=names, top=2)
    assert (ours, len(shown.figures)) == (2, 3)


def test_display_exclude(shown: Shown) -> None:
    issues = np.ones(L.shape, bool)
    with pytest.raises(ValueError, match="labels"):
        summary.display_issues(issues, pred_probs=PN, exclude=[0])
    summary.display_issues(issues, labels=L, exclude=[0, 1], top=1)
    assert len(shown.figures) == 1
    titles = shown.figures[0][0]
    counts = (L == 2).sum(axis=(1, 2))
    first = int(np.argmax(counts))
    assert titles[-1] == f"Image {first}: {counts[first]} flagged pixels"
    assert titles[:-1] == ["given labels"]


# --------------------------------------------------------------------- probability sums


def _sum_warnings(fn: Any, *args: Any, **kwargs: Any) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [w for w in caught if issubclass(w.category, ProbabilitySumWarning)]


@pytest.mark.parametrize(
    "call",
    [
        lambda p: filter.find_label_issues(L, p),
        lambda p: filter.find_label_issues(L, p, downsample=2),
        lambda p: rank.get_label_quality_scores(L, p),
        lambda p: rank.get_label_quality_scores(L, p, method="num_pixel_issues"),
        lambda p: segaudit.audit_arrays(L, p),
    ],
    ids=["find_label_issues", "downsample", "softmin", "num_pixel_issues", "audit_arrays"],
)
def test_unnormalised_probabilities_warn_once(call: Any) -> None:
    caught = _sum_warnings(call, P)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "do not sum to 1" in text and "softmax" in text and "--logits" not in text
    assert caught[0].filename == __file__  # points at the caller's line
    assert _sum_warnings(call, PN) == []


def test_sum_warning_can_be_made_an_error() -> None:
    assert issubclass(ProbabilitySumWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProbabilitySumWarning)
        with pytest.raises(ProbabilitySumWarning):
            filter.find_label_issues(L, P)


def test_unnormalised_results_equal_cleanlab() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbabilitySumWarning)
        ours = filter.find_label_issues(L, P)
        scores = rank.get_label_quality_scores(L, P, method="num_pixel_issues")
    np.testing.assert_array_equal(ours, quiet(ref_filter.find_label_issues, L, P))
    ref = quiet(ref_rank.get_label_quality_scores, L, P, method="num_pixel_issues")
    np.testing.assert_array_equal(scores[0], ref[0])


# -------------------------------------------------------------------------- ValueErrors


@pytest.mark.parametrize(
    "error", [DatasetError, ImageError, ProbabilityError, ConfigError, OptionError]
)
def test_input_errors_are_value_errors(error: type[SegauditError]) -> None:
    assert issubclass(error, ValueError) and issubclass(error, SegauditError)


def test_except_value_error_catches_bad_probabilities() -> None:
    bad = PN.copy()
    bad[1, 0, 2, 2] = np.nan
    try:
        filter.find_label_issues(L, bad)
    except ValueError as error:
        assert isinstance(error, ProbabilityError) and "NaN" in str(error)
    else:
        pytest.fail("NaN probabilities were accepted")


# ---------------------------------------------------------------- majority downsampling


def one_block(labels: list[list[int]], predicted: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """A 2x2 image whose every pixel the model calls ``predicted`` (0.7, others 0.15)."""
    probs = np.full((1, 3, 2, 2), 0.15)
    probs[0, predicted] = 0.7
    return np.array([labels]), probs


@pytest.mark.parametrize(
    ("labels", "predicted", "flags", "score"),
    [
        # majority 0 (3 of 4); averaging class ids would give 0.5
        ([[0, 0], [0, 2]], 1, [[True, True], [True, False]], 1 - 3 / 4),
        # a tie: the lowest class (0) wins; averaging would give class 1, which nobody drew
        ([[0, 2], [2, 0]], 1, [[True, False], [False, True]], 1 - 2 / 4),
        # ignored pixels do not vote and are never flagged; the score counts labelled pixels
        ([[255, 255], [255, 1]], 2, [[False, False], [False, True]], 1 - 1 / 1),
        # the model agrees with the majority: nothing to flag
        ([[1, 1], [0, 1]], 1, [[False, False], [False, False]], 1.0),
    ],
)
def test_downsample_pools_labels_by_majority(
    labels: list[list[int]], predicted: int, flags: list[list[bool]], score: float
) -> None:
    """One 2x2 block pooled to one pixel. Its label is the majority; it is a label issue when
    the model predicts another class, which no pixel is labelled with (threshold 2e-6, so
    it is confident: T = 1). The flag goes back to the pixels that carry the block's label."""
    given, probs = one_block(labels, predicted)
    np.testing.assert_array_equal(filter.find_label_issues(given, probs, downsample=2), [flags])
    scores, _ = rank.get_label_quality_scores(given, probs, method="num_pixel_issues", downsample=2)
    assert scores[0] == pytest.approx(score)


def test_downsampled_flags_carry_their_block_label() -> None:
    labels = RNG.integers(0, 4, (3, 12, 12))
    labels[:, :3] = 255
    probs = RNG.dirichlet(np.ones(4), (3, 12, 12)).transpose(0, 3, 1, 2)
    for factor in (2, 3, 4, 6):
        flags = filter.find_label_issues(labels, probs, downsample=factor)
        assert flags.any()
        assert not flags[labels == 255].any()
        for n, y, x in zip(*np.nonzero(flags), strict=True):
            block = labels[n, y - y % factor :, x - x % factor :][:factor, :factor]
            votes = np.bincount(block[block != 255], minlength=4)
            assert labels[n, y, x] == int(np.argmax(votes))


# -------------------------------------------------------------------------- memory maps


def test_memory_mapped_input_equals_cleanlab(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", RNG.integers(0, 2, (30, 5, 5)))
    np.save(tmp_path / "probs.npy", RNG.random((30, 2, 5, 5)))
    labels = np.load(tmp_path / "labels.npy", mmap_mode="r")
    probs = np.load(tmp_path / "probs.npy", mmap_mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbabilitySumWarning)
        ours = [filter.find_label_issues(labels, probs, batch_size=b) for b in (1, 7, 1000)]
        scores = rank.get_label_quality_scores(labels, probs)
    ref = quiet(ref_filter.find_label_issues, labels, probs, batch_size=7)
    for mask in ours:
        np.testing.assert_array_equal(mask, ref)
    ref_scores = quiet(ref_rank.get_label_quality_scores, labels, probs)
    np.testing.assert_allclose(scores[0], ref_scores[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(scores[1], ref_scores[1])


def test_filter_by_a_list_is_the_union_of_its_classes() -> None:
    both = summary.filter_by_class([0, 2], M, L, PN)
    np.testing.assert_array_equal(
        both, summary.filter_by_class(0, M, L, PN) | summary.filter_by_class(2, M, L, PN)
    )
    np.testing.assert_array_equal(both, ref_summary.filter_by_class([0, 2], M, L, PN))
