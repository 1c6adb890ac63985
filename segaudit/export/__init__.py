"""Hand-off to annotation tools: a run's suspect images in CVAT, Label Studio and COCO form.

One module per format; each has ``write(items, classes, out)``.
:data:`segaudit.commands.export.WRITERS` maps every
:class:`ExportFormat` to its writer (a test checks that none is missing).
"""

from __future__ import annotations

from enum import StrEnum


class ExportFormat(StrEnum):
    CVAT = "cvat"
    LABEL_STUDIO = "label-studio"
    COCO = "coco"
