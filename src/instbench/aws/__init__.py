"""Everything that calls AWS, and nothing that decides what to run (that is `fleet`).
Only `session.py` builds boto3 clients."""
