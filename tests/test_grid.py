"""persam.grid helpers that the method tests do not reach on their own: blob labels."""

from __future__ import annotations

import torch

from persam.grid import components


def _ids(labels: torch.Tensor) -> set[int]:
    return {int(v) for v in torch.unique(labels) if v > 0}


def test_separate_blobs_get_their_own_label_and_each_blob_one():
    mask = torch.zeros(20, 30, dtype=torch.bool)
    mask[2:6, 2:8] = True
    mask[10:18, 20:28] = True
    labels = components(mask)
    assert len(_ids(labels)) == 2
    assert len(_ids(labels[2:6, 2:8])) == 1 and len(_ids(labels[10:18, 20:28])) == 1
    assert (labels[~mask] == 0).all() and (labels[mask] > 0).all()


def test_diagonal_neighbours_are_one_blob_and_a_long_winding_blob_converges():
    diagonal = torch.zeros(6, 6, dtype=torch.bool)
    diagonal[1, 1] = diagonal[2, 2] = diagonal[3, 3] = True
    assert len(_ids(components(diagonal))) == 1
    snake = torch.zeros(21, 21, dtype=torch.bool)  # a serpentine: its length far exceeds its size
    for row in range(0, 21, 2):
        snake[row, :] = True
        snake[row + 1 if row + 1 < 21 else row, 0 if row % 4 else 20] = True
    assert len(_ids(components(snake))) == 1


def test_an_empty_mask_has_no_labels():
    assert not components(torch.zeros(8, 8, dtype=torch.bool)).any()
