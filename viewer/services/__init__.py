"""The verbs that change state, one module per capability."""
