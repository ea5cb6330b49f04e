"""Result stores: the local directory mirror and S3, sharing one key layout."""
