"""Pure functions over pydicom datasets and numpy arrays. No Django imports here."""
