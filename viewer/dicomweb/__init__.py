"""DICOMweb (PS3.18): rendered resources and thumbnails today; QIDO, WADO, STOW to come."""
