"""The file formats users write and segaudit reads: classes configs, gate policies,
calibrations and baselines, on one bounded reader (:mod:`.files`) and one validation layer
(:mod:`.schema`)."""
