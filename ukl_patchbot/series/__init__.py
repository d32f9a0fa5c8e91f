"""series: the patch series on disk (patches, series file, patchset.toml) and its diff model."""
