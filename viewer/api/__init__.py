"""DRF serializers and thin views; ``exceptions`` maps ViewerError to JSON."""
